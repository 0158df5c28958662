import type { MessageInitShape } from "@bufbuild/protobuf"
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt"
import type { ServiceImpl } from "@connectrpc/connect"
import { Stream } from "effect"
import { Sort_Direction } from "#gen/flyteidl2/common/list_pb.js"
import { ErrorInfo_Kind, ErrorInfoSchema, type TaskGroupSchema } from "#gen/flyteidl2/workflow/run_definition_pb.js"
import {
  RunService,
  WatchActionDetailsResponseSchema,
  WatchActionsResponseSchema,
  type WatchGroupsRequest,
  WatchRunDetailsResponseSchema,
  type WatchRunsRequest
} from "#gen/flyteidl2/workflow/run_service_pb.js"
import type { TreeEntry } from "../../domain/ActionTree.js"
import type { ActionDetailsView, RunDetailsView } from "../../domain/Runs.js"
import type { ErrorKind, GroupsRequest, TaskGroupView } from "../../domain/TaskGroups.js"
import { type RunTarget, Watches } from "../../domain/Watches.js"
import type { EffectHandlers } from "./EffectHandlers.js"
import { fromPayload } from "./ProtoCodec.js"
import { actionKey, attemptAt, listRequestInput, runKey } from "./RunRequests.js"
import { buildAction, buildActionDetails, buildRun, buildRunDetails } from "./RunResponses.js"
import { isBinary, sharedMessages } from "./SharedMessages.js"


const runTarget = (request: WatchRunsRequest): RunTarget => {
  switch (request.target.case) {
    case "projectId":
      return { kind: "project", project: request.target.value.name, domain: request.target.value.domain }
    case "taskId": {
      const { domain, name, project, version } = request.target.value
      return { kind: "task", project, domain, name, version }
    }
    case "clusterId":
      return { kind: "cluster", cluster: request.target.value.name }
    default:
      return { kind: "all" }
  }
}

const errorKind = (error: Parameters<GroupsRequest["errorKind"]>[0]): ErrorKind => {
  const kind = fromPayload(ErrorInfoSchema, error).kind
  return kind === ErrorInfo_Kind.USER ? "user" : kind === ErrorInfo_Kind.SYSTEM ? "system" : "unspecified"
}

/** The `created_at` direction: a known sort field, else the list request's sort on `created_at`; newest first. */
const groupsDirection = (request: WatchGroupsRequest): "ASC" | "DESC" => {
  const known = request.knownSortFields.find((field) => field.sortBy.case === "createdAt")?.sortBy.value
  const listed = request.request?.sortByFields.find((sort) => sort.key === "created_at") ??
    (request.request?.sortBy?.key === "created_at" ? request.request.sortBy : undefined)
  const direction = known ?? listed?.direction ?? Sort_Direction.DESCENDING
  return direction === Sort_Direction.ASCENDING ? "ASC" : "DESC"
}

const groupsRequest = (request: WatchGroupsRequest): GroupsRequest => ({
  project: request.scopeBy.case === "projectId"
    ? { name: request.scopeBy.value.name, domain: request.scopeBy.value.domain }
    : undefined,
  startDate: request.startDate === undefined ? undefined : timestampDate(request.startDate),
  endDate: request.endDate === undefined ? undefined : timestampDate(request.endDate),
  limit: listRequestInput(request.request).limit,
  direction: groupsDirection(request),
  errorKind
})

const duration = (ms: number) => {
  const whole = Math.round(ms)
  return { seconds: BigInt(Math.floor(whole / 1000)), nanos: (whole % 1000) * 1_000_000 }
}

const buildTaskGroup = (group: TaskGroupView): MessageInitShape<typeof TaskGroupSchema> => ({
  taskName: group.taskName,
  shortName: group.shortName,
  environmentName: group.environmentName,
  totalRuns: BigInt(group.totalRuns),
  latestRunTime: timestampFromDate(group.latestRunTime),
  ...(group.latestFinishedTime === undefined ? {} : { latestFinishedTime: timestampFromDate(group.latestFinishedTime) }),
  recentStatuses: group.recentStatuses.map((status) => ({ runName: status.runName, phase: status.phase })),
  averageFailureRate: group.averageFailureRate,
  ...(group.averageDurationMs === undefined ? {} : { averageDuration: duration(group.averageDurationMs) }),
  errorCounts: {
    userError: BigInt(group.errorCounts.user),
    systemError: BigInt(group.errorCounts.system),
    unspecifiedError: BigInt(group.errorCounts.unspecified)
  },
  phaseCounts: group.phaseCounts.map((entry) => ({ phase: entry.phase, count: BigInt(entry.count) }))
})

const buildEnrichedAction = (entry: TreeEntry) => ({
  action: buildAction(entry.action),
  meetsFilter: entry.meetsFilter,
  childrenPhaseCounts: Object.fromEntries(entry.childrenPhaseCounts)
})

// Watchers of the same thing are sent the same values: each becomes a message (and its bytes) once. Each is
// given whether its stream is binary once, when the stream opens.
const runDetailsMessage = sharedMessages(WatchRunDetailsResponseSchema, (details: RunDetailsView) => ({
  details: buildRunDetails(details.view, details.attempts)
}))
const actionDetailsMessage = sharedMessages(WatchActionDetailsResponseSchema, (details: ActionDetailsView) => ({
  details: buildActionDetails(details.action, details.attempts)
}))
const actionsMessage = sharedMessages(WatchActionsResponseSchema, (entries: ReadonlyArray<TreeEntry>) => ({
  enrichedActions: entries.map((entry) => buildEnrichedAction(entry))
}))

/** RunService's Watch RPCs: requests mapped to the `Watches` streams, each message built by the shared builders. */
export const watchHandlers = (handlers: EffectHandlers<Watches>): Partial<ServiceImpl<typeof RunService>> => {
  const watch = <A, E>(f: (watches: Watches["Type"]) => Stream.Stream<A, E>) => f(handlers.get(Watches))
  // Run details, action details and actions are a hub's messages as they are (see Watches): hub streams.
  return {
  watchRunDetails: handlers.hubStream(
    RunService.method.watchRunDetails,
    (request) => watch((watches) => watches.runDetails(runKey(request.runId))),
    (context) => runDetailsMessage(isBinary(context))
  ),

  watchActionDetails: handlers.hubStream(
    RunService.method.watchActionDetails,
    (request) => watch((watches) => watches.actionDetails(actionKey(request.actionId))),
    (context) => actionDetailsMessage(isBinary(context))
  ),

  watchRuns: handlers.serverStream(RunService.method.watchRuns, (request) =>
    watch((watches) => watches.runs(runTarget(request))).pipe(
      Stream.map((views) => ({ runs: views.map((view) => buildRun(view)) }))
    )),

  watchActions: handlers.hubStream(
    RunService.method.watchActions,
    (request) =>
      watch((watches) =>
        watches.actions(
          runKey(request.runId),
          request.filter.map((filter) => ({ function: filter.function, field: filter.field, values: filter.values }))
        )
      ),
    (context) => actionsMessage(isBinary(context))
  ),

  watchClusterEvents: handlers.serverStream(RunService.method.watchClusterEvents, (request) =>
    Stream.flatMap(Stream.fromEffect(attemptAt("attempt", request.attempt)), (attempt) =>
      watch((watches) => watches.clusterEvents(actionKey(request.id), attempt))).pipe(
      Stream.map((events) => ({
        clusterEvents: events.map((event) => ({ occurredAt: timestampFromDate(event.occurredAt), message: event.message }))
      }))
    )),

  watchGroups: handlers.serverStream(RunService.method.watchGroups, (request) =>
    watch((watches) => watches.groups(groupsRequest(request))).pipe(
      Stream.map((message) => ({ taskGroups: message.groups.map((group) => buildTaskGroup(group)), sentinel: message.sentinel }))
    ))
  }
}
