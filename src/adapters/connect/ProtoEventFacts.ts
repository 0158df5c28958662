import { Effect, Layer } from "effect"
import { OutputReferencesSchema } from "#gen/flyteidl2/task/common_pb.js"
import { LogContextSchema, TaskLogSchema } from "#gen/flyteidl2/core/execution_pb.js"
import { type ActionEvent, ActionEventSchema, ErrorInfoSchema } from "#gen/flyteidl2/workflow/run_definition_pb.js"
import type { EventFacts } from "../../domain/Events.js"
import type { ActionPhase } from "../../domain/Phase.js"
import { EventFactsReader, EventUnreadable } from "../../ports/EventFactsReader.js"
import { fromPayload, toPayload } from "./ProtoCodec.js"
import { optionalDate } from "./ProtoPayloads.js"

/** What the attempt merge reads of an `ActionEvent` whose phase is known to be an `ActionPhase`; attempt 0
 * reads as 1. */
export const eventFacts = (event: ActionEvent): EventFacts => ({
  attempt: Math.max(1, event.attempt),
  phase: event.phase as ActionPhase,
  version: event.version,
  reportedTime: optionalDate(event.reportedTime),
  updatedTime: optionalDate(event.updatedTime),
  errorInfo: event.errorInfo === undefined ? undefined : toPayload(ErrorInfoSchema, event.errorInfo),
  logInfo: event.logInfo.map((log) => ({ name: log.name, payload: toPayload(TaskLogSchema, log) })),
  logContext: event.logContext === undefined ? undefined : toPayload(LogContextSchema, event.logContext),
  cluster: event.cluster,
  outputs: event.outputs === undefined ? undefined : toPayload(OutputReferencesSchema, event.outputs),
  cacheStatus: event.cacheStatus,
  clusterEvents: event.clusterEvents.map((clusterEvent) => ({
    occurredAt: optionalDate(clusterEvent.occurredAt) ?? new Date(0),
    message: clusterEvent.message
  }))
})

/** The `EventFactsReader` port over binary `ActionEvent`s. */
export const make = EventFactsReader.of({
  read: (raw) =>
    Effect.map(
      Effect.try({
        try: () => fromPayload(ActionEventSchema, raw),
        catch: (cause) => new EventUnreadable({ reason: cause instanceof Error ? cause.message : String(cause) })
      }),
      (event) => eventFacts(event)
    )
})

export const layer = Layer.succeed(EventFactsReader, make)
