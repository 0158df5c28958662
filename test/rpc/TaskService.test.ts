import { create } from "@bufbuild/protobuf"
import { Code } from "@connectrpc/connect"
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { ActionPhase } from "#gen/flyteidl2/common/phase_pb.js"
import { TaskMetadataSchema } from "#gen/flyteidl2/core/tasks_pb.js"
import { DocumentationEntitySchema } from "#gen/flyteidl2/task/task_definition_pb.js"
import { TaskService } from "#gen/flyteidl2/task/task_service_pb.js"
import { InternalRunService } from "#gen/flyteidl2/workflow/internal_run_service_pb.js"
import { RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import * as MemoryRunStore from "../../src/adapters/memory/MemoryRunStore.js"
import * as SqlRunStore from "../../src/adapters/sql/SqlRunStore.js"
import { backends, describeBackends } from "../support/backends.js"
import { createNamed, integer, taskSpec } from "../support/RunRequests.js"
import { layerTestServer } from "../support/TestApp.js"
import { call, failure, jsonClient } from "../support/WebUiClients.js"

const taskId = (name: string, version: string) => ({ org: "testorg", project: "flytesnacks", domain: "development", name, version })

/** A spec as the SDK deploys one: its template names the task; `entrypoint` marks it as one. */
const deployable = (name: string, version: string, entrypoint = false, description = "") => {
  const spec = taskSpec(name, version)
  spec.taskTemplate!.metadata = create(TaskMetadataSchema, { isEntrypoint: entrypoint })
  spec.documentation = create(DocumentationEntitySchema, { shortDescription: description })
  return spec
}

describeBackends("TaskService", backends({ memory: MemoryRunStore.layer, sql: SqlRunStore.layer }), (backend) => {
  const server = (trustIdentity = false) => layerTestServer(backend.layer, { trustIdentity })

  it.effect("DeployTask records a spec that GetTaskDetails reads; the same again is fine, another spec is AlreadyExists", () =>
    Effect.gen(function*() {
      const tasks = yield* jsonClient(TaskService, { "X-Forwarded-User": "ana@example.com" })
      const spec = deployable("wf.train", "v1", true, "trains the model")
      yield* call(() => tasks.deployTask({ taskId: taskId("wf.train", "v1"), spec }))
      yield* call(() => tasks.deployTask({ taskId: taskId("wf.train", "v1"), spec }))
      const { details } = yield* call(() => tasks.getTaskDetails({ taskId: taskId("wf.train", "v1") }))
      expect(details?.taskId).toMatchObject(taskId("wf.train", "v1"))
      expect(details?.spec?.taskTemplate?.id?.name).toBe("wf.train")
      expect(details?.spec?.taskTemplate?.metadata?.isEntrypoint).toBe(true)
      expect(details?.metadata).toMatchObject({ shortName: "train", environmentName: "default-env", shortDescription: "trains the model" })
      expect(details?.metadata?.deployedBy?.principal.case).toBe("user")
      expect(details?.metadata?.deployedAt).toBeDefined()
      const other = yield* failure(() => tasks.deployTask({ taskId: taskId("wf.train", "v1"), spec: deployable("wf.train", "v1", false) }))
      expect(other?.code).toBe(Code.AlreadyExists)
      expect(other?.rawMessage).toContain("wf.train version v1 already exists")
    }).pipe(Effect.provide(server(true))))

  it.effect("bad and unknown ids: InvalidArgument naming the field, NotFound for a task never recorded", () =>
    Effect.gen(function*() {
      const tasks = yield* jsonClient(TaskService)
      const missing = yield* failure(() => tasks.getTaskDetails({ taskId: taskId("nope", "v1") }))
      expect(missing?.code).toBe(Code.NotFound)
      expect(missing?.rawMessage).toBe("task flytesnacks/development/nope version v1 not found")
      const cases: ReadonlyArray<readonly [() => Promise<unknown>, string]> = [
        [() => tasks.getTaskDetails({}), "task_id"],
        [() => tasks.getTaskDetails({ taskId: taskId("x", "") }), "task_id.version"],
        [() => tasks.deployTask({ taskId: taskId("x", "v1") }), "spec"],
        [() => tasks.deployTask({ taskId: taskId("x", "v1"), spec: deployable("y", "v1") }), "spec.task_template.id"],
        [() => tasks.listTasks({ request: {} }), "scope_by"],
        [() => tasks.listTasks({ scopeBy: { case: "org", value: "testorg" }, request: { limit: 500 } }), "limit"],
        [() => tasks.listTasks({ scopeBy: { case: "org", value: "testorg" }, request: { sortBy: { key: "colour" } } }), "colour"],
        [() => tasks.listVersions({}), "task_name"]
      ]
      for (const [request, field] of cases) {
        const error = yield* failure(request)
        expect(error?.code, field).toBe(Code.InvalidArgument)
        expect(error?.rawMessage).toContain(field)
      }
      const triggers = yield* failure(() =>
        tasks.deployTask({ taskId: taskId("x", "v1"), spec: deployable("x", "v1"), triggers: [{ name: "nightly", spec: {} }] })
      )
      expect(triggers?.code).toBe(Code.Unimplemented)
    }).pipe(Effect.provide(server())))

  it.effect("a deployed task runs with CreateRun's task_id, and ListTasks shows its latest version and newest run", () =>
    Effect.gen(function*() {
      const tasks = yield* jsonClient(TaskService)
      const runs = yield* jsonClient(RunService)
      yield* call(() => tasks.deployTask({ taskId: taskId("wf.train", "v1"), spec: deployable("wf.train", "v1", true) }))
      yield* call(() => tasks.deployTask({ taskId: taskId("wf.train", "v2"), spec: deployable("wf.train", "v2", true) }))
      yield* call(() => tasks.deployTask({ taskId: taskId("wf.helper", "v1"), spec: deployable("wf.helper", "v1") }))
      const { run } = yield* call(() =>
        runs.createRun(createNamed("from-task-id", {
          task: { case: "taskId", value: taskId("wf.train", "v2") },
          inputWrapper: { case: "inputs", value: { literals: [{ name: "x", value: integer(3) }] } }
        }))
      )
      expect(run?.action?.metadata?.spec.case === "task" && run.action.metadata.spec.value.id?.version).toBe("v2")
      // CreateRun with a task_spec records that task too.
      yield* call(() => runs.createRun(createNamed("from-spec", { task: { case: "taskSpec", value: taskSpec("wf.adhoc", "a1") } })))

      const scope = { case: "projectId" as const, value: { organization: "testorg", name: "flytesnacks", domain: "development" } }
      // Newest first by default (the calls may share a millisecond, so only the order of the times is checked).
      const newest = yield* call(() => tasks.listTasks({ scopeBy: scope }))
      const times = newest.tasks.map((task) => Number(task.metadata?.deployedAt?.seconds) * 1e9 + (task.metadata?.deployedAt?.nanos ?? 0))
      expect(times).toEqual([...times].sort((a, b) => b - a))
      const byName = { key: "name", direction: 1 }
      const listed = yield* call(() => tasks.listTasks({ scopeBy: scope, request: { limit: 10, sortBy: byName } }))
      expect(listed.tasks.map((task) => `${task.taskId?.name}@${task.taskId?.version}`)).toEqual([
        "wf.adhoc@a1",
        "wf.helper@v1",
        "wf.train@v2"
      ])
      const train = listed.tasks.find((task) => task.taskId?.name === "wf.train")
      expect(train?.metadata?.shortName).toBe("train")
      expect(train?.taskSummary?.latestRun).toMatchObject({
        runId: { project: "flytesnacks", domain: "development", name: "from-task-id" },
        phase: ActionPhase.QUEUED,
        rootTaskName: "wf.train"
      })
      expect(listed.tasks.find((task) => task.taskId?.name === "wf.helper")?.taskSummary).toBeUndefined()
      expect(listed.token).toBe("")

      const entrypoints = yield* call(() =>
        tasks.listTasks({ scopeBy: { case: "org", value: "testorg" }, knownFilters: [{ filterBy: { case: "isEntrypoint", value: true } }] })
      )
      expect(entrypoints.tasks.map((task) => task.taskId?.name)).toEqual(["wf.train"])
      const named = yield* call(() =>
        tasks.listTasks({
          scopeBy: scope,
          request: { filters: [{ field: "name", function: 14, values: ["HELP"] }], sortBy: { key: "name", direction: 1 } }
        })
      )
      expect(named.tasks.map((task) => task.taskId?.name)).toEqual(["wf.helper"])

      // Pages of one, following the tokens.
      const seen: Array<string> = []
      let token = ""
      do {
        const page = yield* call(() => tasks.listTasks({ scopeBy: scope, request: { limit: 1, token, sortBy: byName } }))
        seen.push(...page.tasks.map((task) => task.taskId?.name ?? "?"))
        token = page.token
      } while (token !== "" && seen.length < 10)
      expect(seen).toEqual(["wf.adhoc", "wf.helper", "wf.train"])

      const versions = yield* call(() => tasks.listVersions({ taskName: { org: "testorg", project: "flytesnacks", domain: "development", name: "wf.train" } }))
      expect(versions.versions.map((version) => version.version)).toEqual(["v2", "v1"])
      expect(versions.versions.every((version) => version.deployedAt !== undefined)).toBe(true)
    }).pipe(Effect.provide(server())))

  it.effect("RecordAction records the task of a child task action with a spec; ListTasks lists it", () =>
    Effect.gen(function*() {
      const tasks = yield* jsonClient(TaskService)
      const runs = yield* jsonClient(RunService)
      const internal = yield* jsonClient(InternalRunService)
      yield* call(() => runs.createRun(createNamed("parent-run", { task: { case: "taskSpec", value: taskSpec("wf.main", "m1") } })))
      const child = (name: string, withSpec: boolean) =>
        internal.recordAction({
          actionId: { run: { org: "", project: "flytesnacks", domain: "development", name: "parent-run" }, name },
          parent: "a0",
          spec: {
            case: "task",
            value: {
              id: { project: "flytesnacks", domain: "development", name: withSpec ? "wf.child" : "wf.bare", version: "c1" },
              ...(withSpec ? { spec: taskSpec("wf.child", "c1") } : {})
            }
          }
        })
      expect((yield* call(() => child("n1", true))).status?.code).toBe(0)
      expect((yield* call(() => child("n2", true))).status?.code).toBe(0)
      expect((yield* call(() => child("n3", false))).status?.code).toBe(0)
      const listed = yield* call(() =>
        tasks.listTasks({ scopeBy: { case: "org", value: "testorg" }, request: { sortBy: { key: "name", direction: 1 } } })
      )
      expect(listed.tasks.map((task) => `${task.taskId?.name}@${task.taskId?.version}`)).toEqual(["wf.child@c1", "wf.main@m1"])
      const { details } = yield* call(() => tasks.getTaskDetails({ taskId: taskId("wf.child", "c1") }))
      expect(details?.spec?.taskTemplate?.id?.name).toBe("wf.child")
    }).pipe(Effect.provide(server())))
})
