import type { MessageInitShape } from "@bufbuild/protobuf"
import type { ServiceImpl } from "@connectrpc/connect"
import { Effect } from "effect"
import { EnrichedIdentitySchema } from "#gen/flyteidl2/common/identity_pb.js"
import type { TaskIdentifier, TaskMetadataSchema } from "#gen/flyteidl2/task/task_definition_pb.js"
import { TaskSpecSchema } from "#gen/flyteidl2/task/task_definition_pb.js"
import { TaskService } from "#gen/flyteidl2/task/task_service_pb.js"
import { create } from "@bufbuild/protobuf"
import { Unimplemented } from "../../domain/Errors.js"
import type { TaskKey } from "../../domain/Ids.js"
import type { RunView, TaskRecord } from "../../domain/Records.js"
import type { TaskScope } from "../../domain/TaskCatalog.js"
import { Tasks } from "../../domain/Tasks.js"
import type { EffectHandlers } from "./EffectHandlers.js"
import { forwardedSubject, type IdentityOptions } from "./ForwardedIdentity.js"
import { fromPayload, payloadReader, toPayload } from "./ProtoCodec.js"
import { listRequestInput } from "./RunRequests.js"
import { timestamp } from "./RunResponses.js"
import { isBinary } from "./SharedMessages.js"

const taskKey = (id: Pick<TaskIdentifier, "project" | "domain" | "name" | "version"> | undefined): TaskKey => ({
  project: id?.project ?? "",
  domain: id?.domain ?? "",
  name: id?.name ?? "",
  version: id?.version ?? ""
})

const taskId = (task: TaskRecord) => ({ org: task.org, ...task.key })

/** What lists and details show of a task, read from its spec and its row. */
const buildMetadata = (task: TaskRecord): MessageInitShape<typeof TaskMetadataSchema> => {
  const spec = fromPayload(TaskSpecSchema, task.spec)
  return {
    ...(task.deployedBy === undefined
      ? {}
      : { deployedBy: create(EnrichedIdentitySchema, { principal: { case: "user", value: { id: { subject: task.deployedBy } } } }) }),
    shortName: spec.shortName !== "" ? spec.shortName : task.key.name,
    deployedAt: timestamp(task.createdAt),
    environmentName: spec.environment?.name ?? "",
    shortDescription: spec.documentation?.shortDescription ?? ""
  }
}

const latestRun = (view: RunView) => ({
  runId: { org: view.run.org, ...view.run.key },
  runTime: timestamp(view.run.createdAt),
  phase: view.root.phase,
  rootTaskName: view.root.task?.name ?? ""
})

/** TaskService: requests mapped to the `Tasks` use cases. */
export const taskServiceHandlers = (
  handlers: EffectHandlers<Tasks>,
  identity: IdentityOptions
): Partial<ServiceImpl<typeof TaskService>> => ({
  deployTask: handlers.unary(TaskService.method.deployTask, (request, context) => {
    const spec = request.spec!
    const template = spec.taskTemplate?.id
    const triggers = request.triggers.length === 0
      ? Effect.void
      : Effect.fail(new Unimplemented({ message: "triggers: triggers are not served by this service; deploy the task without them" }))
    return Effect.zipRight(triggers, Effect.flatMap(Tasks, (tasks) =>
      tasks.deploy({
        key: taskKey(request.taskId),
        org: request.taskId?.org ?? "",
        spec: toPayload(TaskSpecSchema, spec),
        templateId: template === undefined ? undefined : taskKey(template),
        entrypoint: spec.taskTemplate?.metadata?.isEntrypoint ?? false,
        deployedBy: forwardedSubject(context.requestHeader, identity)
      }))).pipe(Effect.as({}))
  }),

  getTaskDetails: handlers.unary(TaskService.method.getTaskDetails, (request, context) =>
    Effect.flatMap(Tasks, (tasks) => tasks.details(taskKey(request.taskId))).pipe(
      Effect.map((task) => ({
        details: {
          taskId: taskId(task),
          metadata: buildMetadata(task),
          spec: payloadReader(isBinary(context))(TaskSpecSchema, task.spec)
        }
      }))
    )),

  listTasks: handlers.unary(TaskService.method.listTasks, (request) => {
    const scope: TaskScope = request.scopeBy.case === "projectId"
      ? { kind: "project", project: request.scopeBy.value.name, domain: request.scopeBy.value.domain }
      : { kind: "all" }
    const known = request.knownFilters.map((filter) => filter.filterBy)
    return Effect.flatMap(Tasks, (tasks) =>
      tasks.list(scope, listRequestInput(request.request), {
        deployedBy: known.flatMap((filter) => (filter.case === "deployedBy" ? [filter.value] : [])),
        entrypoint: known.findLast((filter) => filter.case === "isEntrypoint")?.value as boolean | undefined
      })).pipe(
        Effect.map((page) => ({
          tasks: page.items.map((item) => ({
            taskId: taskId(item.task),
            metadata: buildMetadata(item.task),
            ...(item.latestRun === undefined ? {} : { taskSummary: { latestRun: latestRun(item.latestRun) } })
          })),
          token: page.token
        }))
      )
  }),

  listVersions: handlers.unary(TaskService.method.listVersions, (request) => {
    const name = request.taskName!
    return Effect.flatMap(Tasks, (tasks) =>
      tasks.versions({ project: name.project, domain: name.domain, name: name.name }, listRequestInput(request.request))).pipe(
        Effect.map((page) => ({
          versions: page.items.map((task) => ({ version: task.key.version, deployedAt: timestamp(task.createdAt) })),
          token: page.token
        }))
      )
  })
})
