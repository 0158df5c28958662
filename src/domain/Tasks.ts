import { Clock, Context, Effect, Layer, Option } from "effect"
import { RunStore, type StoreUnavailable } from "../ports/RunStore.js"
import { type CatalogFilter, encodeCatalogToken, parseCatalogRequest } from "./CatalogQuery.js"
import { AlreadyExists, InvalidArgument, NotFound } from "./Errors.js"
import type { TaskKey } from "./Ids.js"
import { type ListRequestInput, parseListRequest, runListFields } from "./ListRequest.js"
import type { Payload } from "./Payload.js"
import type { RunView, TaskRecord } from "./Records.js"
import type { ListPage } from "./Runs.js"
import { type TaskField, taskList, type TaskName, type TaskScope, versionList } from "./TaskCatalog.js"

/** A task to deploy, as DeployTask sends it. */
export interface DeployTaskInput {
  readonly key: TaskKey
  readonly org: string
  readonly spec: Payload
  /** The spec's own template id, when it has one: it must name the same task. */
  readonly templateId: TaskKey | undefined
  readonly entrypoint: boolean
  readonly deployedBy: string | undefined
}

/** ListTasks' known filters, beside the request's own. */
export interface KnownTaskFilters {
  /** Tasks deployed by any of these subjects (none: anyone). */
  readonly deployedBy: ReadonlyArray<string>
  readonly entrypoint: boolean | undefined
}

export interface TaskListItem {
  /** The latest version of the task. */
  readonly task: TaskRecord
  /** Its newest run (of any version), if any. */
  readonly latestRun: RunView | undefined
}

/** The use cases of TaskService over the `tasks` table (which CreateRun fills too). */
export class Tasks extends Context.Tag("runs/Tasks")<Tasks, {
  /** Records the task; the same task again is fine, another spec under its id is `AlreadyExists`. */
  readonly deploy: (input: DeployTaskInput) => Effect.Effect<void, InvalidArgument | AlreadyExists | StoreUnavailable>
  readonly details: (key: TaskKey) => Effect.Effect<TaskRecord, NotFound | StoreUnavailable>
  readonly list: (
    scope: TaskScope,
    request: ListRequestInput,
    known: KnownTaskFilters
  ) => Effect.Effect<ListPage<TaskListItem>, InvalidArgument | StoreUnavailable>
  readonly versions: (
    name: TaskName,
    request: ListRequestInput
  ) => Effect.Effect<ListPage<TaskRecord>, InvalidArgument | StoreUnavailable>
}>() {}

const keyText = (key: TaskKey) => `${key.project}/${key.domain}/${key.name} version ${key.version}`

const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((byte, i) => byte === b[i])

const knownFilters = (known: KnownTaskFilters): ReadonlyArray<CatalogFilter<TaskField>> => [
  ...(known.deployedBy.length === 0 ? [] : [{ field: "deployed_by" as const, fn: "VALUE_IN" as const, values: known.deployedBy }]),
  ...(known.entrypoint === undefined
    ? []
    : [{ field: "is_entrypoint" as const, fn: "EQUAL" as const, values: [known.entrypoint ? 1 : 0] }])
]

const newestRun = parseListRequest(
  { limit: 1, token: "", sortBy: undefined, sortByFields: [], filters: [], rawFilters: [] },
  { allowedFields: runListFields }
)

export const make = Effect.gen(function*() {
  const store = yield* RunStore

  return Tasks.of({
    deploy: Effect.fn("Tasks.deploy")(function*(input) {
      const template = input.templateId
      if (
        template !== undefined &&
        (["project", "domain", "name", "version"] as const).some((part) => template[part] !== "" && template[part] !== input.key[part])
      ) {
        return yield* new InvalidArgument({
          message: `spec.task_template.id: names ${keyText(template)}, not the task_id ${keyText(input.key)}`
        })
      }
      const createdAt = new Date(yield* Clock.currentTimeMillis)
      const stored = yield* store.deployTask({
        key: input.key,
        org: input.org,
        spec: input.spec,
        createdAt,
        deployedBy: input.deployedBy,
        entrypoint: input.entrypoint
      })
      if (!sameBytes(stored.spec.binary, input.spec.binary)) {
        return yield* new AlreadyExists({ message: `task ${keyText(input.key)} already exists with a different spec` })
      }
    }),

    details: Effect.fn("Tasks.details")(function*(key) {
      const found = yield* store.getTask(key)
      if (Option.isNone(found)) return yield* new NotFound({ message: `task ${keyText(key)} not found` })
      return found.value
    }),

    list: Effect.fn("Tasks.list")(function*(scope, request, known) {
      const query = yield* parseCatalogRequest(taskList, request, knownFilters(known))
      const page = yield* store.listTasks(scope, query)
      const runsQuery = yield* newestRun.pipe(Effect.orDie)
      const items = yield* Effect.forEach(page.items, (task) =>
        store.listRuns({ kind: "taskName", ...task.key }, runsQuery).pipe(
          Effect.map((runs) => ({ task, latestRun: runs.items[0] }))
        ))
      return { items, token: encodeCatalogToken(taskList, query, page.next) }
    }),

    versions: Effect.fn("Tasks.versions")(function*(name, request) {
      const query = yield* parseCatalogRequest(versionList, request)
      const page = yield* store.listTaskVersions(name, query)
      return { items: page.items, token: encodeCatalogToken(versionList, query, page.next) }
    })
  })
})

/** Needs RunStore. */
export const layer = Layer.effect(Tasks, make)
