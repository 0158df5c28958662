import { create, type MessageInitShape } from "@bufbuild/protobuf"
import type { Timestamp } from "@bufbuild/protobuf/wkt"
import { ActionIdentifierSchema } from "#gen/flyteidl2/common/identifier_pb.js"
import { EnrichedIdentitySchema } from "#gen/flyteidl2/common/identity_pb.js"
import { LogContextSchema, TaskLogSchema } from "#gen/flyteidl2/core/execution_pb.js"
import { OutputReferencesSchema } from "#gen/flyteidl2/task/common_pb.js"
import { RunSpecSchema } from "#gen/flyteidl2/task/run_pb.js"
import { TaskSpecSchema, TraceSpecSchema } from "#gen/flyteidl2/task/task_definition_pb.js"
import {
  type ActionAttempt,
  type ActionDetailsSchema,
  type ActionMetadataSchema,
  type ActionSchema,
  type ActionStatus as ActionStatusMessage,
  type ClusterEvent,
  ErrorInfoSchema,
  type PhaseTransition,
  type RunDetailsSchema,
  type RunSchema
} from "#gen/flyteidl2/workflow/run_definition_pb.js"
import type { ActionKey } from "../../domain/Ids.js"
import { ActionPhase, ActionType } from "../../domain/Phase.js"
import type { ActionRecord, AttemptRecord, RunView } from "../../domain/Records.js"
import { type ActionStatus, latestAttempt, statusOf } from "../../domain/Status.js"
import { fromPayload, type PayloadReader } from "./ProtoCodec.js"

/**
 * The one set of builders every RPC answers with: Run, Action, ActionDetails, RunDetails. Every identifier
 * carries the org stored with the run.
 *
 * The messages a response has many of (timestamps, statuses, attempts with their transitions and cluster events)
 * are built as whole messages, typed by the generated types (which name every field they must have), and not as
 * init shapes: Connect passes a handler's answer through `create`, which takes a message as it is but walks an
 * init shape field by field by reflection, and a run's details have about 150 timestamps and 100 other messages.
 */

/** `timestampFromDate`'s message, built directly (the same seconds and nanos). */
export const timestamp = (date: Date): Timestamp => {
  const ms = date.getTime()
  const seconds = Math.floor(ms / 1000)
  return { $typeName: "google.protobuf.Timestamp", seconds: BigInt(seconds), nanos: (ms - seconds * 1000) * 1_000_000 }
}

export const actionId = (key: ActionKey, org: string) =>
  create(ActionIdentifierSchema, {
    run: { org, project: key.run.project, domain: key.run.domain, name: key.run.name },
    name: key.name
  })

const buildStatus = (status: ActionStatus): ActionStatusMessage => ({
  $typeName: "flyteidl2.workflow.ActionStatus",
  phase: status.phase,
  startTime: timestamp(status.startTime),
  ...(status.endTime === undefined ? {} : { endTime: timestamp(status.endTime) }),
  attempts: status.attempts,
  cacheStatus: status.cacheStatus,
  ...(status.durationMs === undefined ? {} : { durationMs: BigInt(status.durationMs) })
})

const buildMetadata = (action: ActionRecord): MessageInitShape<typeof ActionMetadataSchema> => {
  const spec: NonNullable<MessageInitShape<typeof ActionMetadataSchema>["spec"]> =
    action.type === ActionType.TRACE
      ? { case: "trace", value: { name: action.functionName ?? "" } }
      : action.type === ActionType.CONDITION
      ? { case: "condition", value: { name: action.functionName ?? "" } }
      : {
        case: "task",
        value: {
          ...(action.task === undefined ? {} : { id: action.task }),
          taskType: action.taskType ?? "",
          shortName: action.shortName ?? ""
        }
      }
  return {
    parent: action.parent ?? "",
    group: action.group ?? "",
    ...(action.createdBy === undefined
      ? {}
      : { executedBy: create(EnrichedIdentitySchema, { principal: { case: "user", value: { id: { subject: action.createdBy } } } }) }),
    spec,
    actionType: action.type,
    environmentName: action.environmentName ?? "",
    funtionName: action.functionName ?? "",
    triggerName: action.triggerName ?? "",
    source: action.source
  }
}

export const buildAction = (
  action: ActionRecord,
  attempts: ReadonlyArray<AttemptRecord> = []
): MessageInitShape<typeof ActionSchema> => ({
  id: actionId(action.key, action.org),
  metadata: buildMetadata(action),
  status: buildStatus(statusOf(action, attempts))
})

export const buildRun = (view: RunView): MessageInitShape<typeof RunSchema> => ({ action: buildAction(view.root) })

const buildAttempt = (attempt: AttemptRecord, read: PayloadReader): ActionAttempt => ({
  $typeName: "flyteidl2.workflow.ActionAttempt",
  phase: attempt.phase,
  ...(attempt.startTime === undefined ? {} : { startTime: timestamp(attempt.startTime) }),
  ...(attempt.endTime === undefined ? {} : { endTime: timestamp(attempt.endTime) }),
  ...(attempt.errorInfo === undefined ? {} : { errorInfo: read(ErrorInfoSchema, attempt.errorInfo) }),
  attempt: attempt.attempt,
  logInfo: attempt.logInfo.map((log) => read(TaskLogSchema, log)),
  ...(attempt.outputs === undefined ? {} : { outputs: read(OutputReferencesSchema, attempt.outputs) }),
  logsAvailable: attempt.logsAvailable,
  cacheStatus: attempt.cacheStatus,
  clusterEvents: attempt.clusterEvents.map((event): ClusterEvent => ({
    $typeName: "flyteidl2.workflow.ClusterEvent",
    occurredAt: timestamp(event.occurredAt),
    message: event.message
  })),
  phaseTransitions: attempt.phaseTransitions.map((transition): PhaseTransition => ({
    $typeName: "flyteidl2.workflow.PhaseTransition",
    phase: transition.phase,
    startTime: timestamp(transition.startTime),
    ...(transition.endTime === undefined ? {} : { endTime: timestamp(transition.endTime) })
  })),
  cluster: attempt.cluster ?? "",
  ...(attempt.logContext === undefined ? {} : { logContext: read(LogContextSchema, attempt.logContext) })
})

const buildResult = (
  action: ActionRecord,
  attempts: ReadonlyArray<AttemptRecord>,
  read: PayloadReader
): NonNullable<MessageInitShape<typeof ActionDetailsSchema>["result"]> => {
  if (action.phase === ActionPhase.ABORTED) {
    return { case: "abortInfo", value: { reason: action.abort?.reason ?? "" } }
  }
  if (action.phase === ActionPhase.FAILED || action.phase === ActionPhase.TIMED_OUT) {
    const error = latestAttempt(attempts)?.errorInfo ?? action.errorInfo
    if (error !== undefined) return { case: "errorInfo", value: read(ErrorInfoSchema, error) }
  }
  return { case: undefined }
}

const buildSpec = (
  action: ActionRecord,
  read: PayloadReader
): NonNullable<MessageInitShape<typeof ActionDetailsSchema>["spec"]> =>
  action.spec?.kind === "task"
    ? { case: "task", value: read(TaskSpecSchema, action.spec.payload) }
    : action.spec?.kind === "trace"
    ? { case: "trace", value: read(TraceSpecSchema, action.spec.payload) }
    : { case: undefined }

/** `read` turns stored payloads into messages: `fromPayload` (decoded) unless the response is binary. */
export const buildActionDetails = (
  action: ActionRecord,
  attempts: ReadonlyArray<AttemptRecord>,
  read: PayloadReader = fromPayload
): MessageInitShape<typeof ActionDetailsSchema> => ({
  id: actionId(action.key, action.org),
  metadata: buildMetadata(action),
  status: buildStatus(statusOf(action, attempts)),
  result: buildResult(action, attempts, read),
  spec: buildSpec(action, read),
  attempts: [...attempts].sort((a, b) => a.attempt - b.attempt).map((attempt) => buildAttempt(attempt, read))
})

export const buildRunDetails = (
  view: RunView,
  attempts: ReadonlyArray<AttemptRecord>,
  read: PayloadReader = fromPayload
): MessageInitShape<typeof RunDetailsSchema> => ({
  runSpec: read(RunSpecSchema, view.run.runSpec),
  action: buildActionDetails(view.root, attempts, read)
})
