import { Either } from "effect"
import { ConditionActionSchema, type ActionEvent, ActionEventSchema, type ActionStatus } from "#gen/flyteidl2/workflow/run_definition_pb.js"
import type { RecordActionRequest } from "#gen/flyteidl2/workflow/internal_run_service_pb.js"
import { TaskSpecSchema, TraceSpecSchema } from "#gen/flyteidl2/task/task_definition_pb.js"
import { InvalidArgument } from "../../domain/Errors.js"
import type { StatusReport, StoredEvent } from "../../domain/Events.js"
import type { RecordActionInput } from "../../domain/Ingestion.js"
import { type ActionPhase, isActionPhase } from "../../domain/Phase.js"
import { toPayload } from "./ProtoCodec.js"
import { eventFacts } from "./ProtoEventFacts.js"
import { optionalDate } from "./ProtoPayloads.js"
import { actionKey, attemptAt } from "./RunRequests.js"

const orUndefined = (text: string): string | undefined => (text === "" ? undefined : text)

/** A phase number as the domain's phase; proto3 lets any number through, the rules know ten. */
const phaseAt = (field: string, phase: number): Either.Either<ActionPhase, InvalidArgument> =>
  isActionPhase(phase)
    ? Either.right(phase)
    : Either.left(new InvalidArgument({ message: `${field}: ${phase} is not an ActionPhase (0 to 9)` }))

/** RecordAction as the domain sees it; the executors' shapes (no org, no task spec) are accepted. */
export const recordActionInput = (request: RecordActionRequest): Either.Either<RecordActionInput, InvalidArgument> => {
  const base = {
    key: actionKey(request.actionId),
    parent: orUndefined(request.parent),
    group: orUndefined(request.group),
    inputUri: orUndefined(request.inputUri)
  }
  switch (request.spec.case) {
    case "task": {
      const { id, spec } = request.spec.value
      return Either.right({
        ...base,
        spec: {
          kind: "task",
          task: id === undefined
            ? undefined
            : { org: id.org, project: id.project, domain: id.domain, name: id.name, version: id.version },
          taskType: orUndefined(spec?.taskTemplate?.type ?? ""),
          shortName: orUndefined(spec?.shortName ?? ""),
          environmentName: orUndefined(spec?.environment?.name ?? ""),
          spec: spec === undefined ? undefined : toPayload(TaskSpecSchema, spec)
        }
      })
    }
    case "trace": {
      const trace = request.spec.value
      return Either.map(phaseAt("trace.phase", trace.phase), (phase) => ({
        ...base,
        spec: {
          kind: "trace" as const,
          name: trace.name,
          phase,
          startTime: optionalDate(trace.startTime),
          endTime: optionalDate(trace.endTime),
          outputsUri: orUndefined(trace.outputs?.outputUri ?? ""),
          spec: trace.spec === undefined ? undefined : toPayload(TraceSpecSchema, trace.spec)
        }
      }))
    }
    case "condition":
      return Either.right({
        ...base,
        spec: { kind: "condition", name: request.spec.value.name, spec: toPayload(ConditionActionSchema, request.spec.value) }
      })
    default:
      return Either.left(new InvalidArgument({ message: "spec: one of task, trace or condition is required" }))
  }
}

export const statusReport = (status: ActionStatus | undefined): Either.Either<StatusReport, InvalidArgument> =>
  Either.map(Either.all([phaseAt("status.phase", status?.phase ?? 0), attemptAt("status.attempts", status?.attempts ?? 0)]), ([phase, attempts]) => ({
    phase,
    attempts,
    cacheStatus: status?.cacheStatus ?? 0,
    startTime: optionalDate(status?.startTime),
    endTime: optionalDate(status?.endTime)
  }))

/** An event as the event log keeps it: the raw event, keyed, with the facts the attempt merge reads of it;
 * attempt 0 counts as attempt 1. */
export const storedEvent = (event: ActionEvent): Either.Either<StoredEvent, InvalidArgument> =>
  Either.map(Either.all([phaseAt("phase", event.phase), attemptAt("attempt", event.attempt)]), () => ({
    key: actionKey(event.id),
    ...eventFacts(event),
    raw: toPayload(ActionEventSchema, event)
  }))
