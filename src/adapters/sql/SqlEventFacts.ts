import type { EventFacts } from "../../domain/Events.js"
import type { Payload } from "../../domain/Payload.js"

/**
 * The facts the attempt merge reads of an event, beyond those in the event log's own columns (key and times),
 * as `action_events.facts` keeps them: a JSON object whose fields are left out when empty, each payload as
 * `[base64 binary, protobuf JSON text]`, each cluster event as `[epoch milliseconds, message]`. JSON because
 * both databases hand text back as it was written and V8 parses it natively: reading facts back costs no
 * protobuf decoding. NULL (an event stored before the column existed) is filled at start-up.
 */
export type EventDetails = Omit<EventFacts, "attempt" | "phase" | "version" | "reportedTime" | "updatedTime">

type StoredPayload = readonly [binary: string, json: string]

/** Undefined fields are left out of the text. */
interface StoredDetails {
  readonly errorInfo?: StoredPayload | undefined
  readonly logInfo?: ReadonlyArray<readonly [name: string, binary: string, json: string]> | undefined
  readonly logContext?: StoredPayload | undefined
  readonly cluster?: string | undefined
  readonly outputs?: StoredPayload | undefined
  readonly cacheStatus?: number | undefined
  readonly clusterEvents?: ReadonlyArray<readonly [millis: number, message: string]> | undefined
}

const base64 = (binary: Uint8Array) => Buffer.from(binary.buffer, binary.byteOffset, binary.byteLength).toString("base64")

const storedPayload = (payload: Payload | undefined): StoredPayload | undefined =>
  payload === undefined ? undefined : [base64(payload.binary), payload.json]

const payloadOf = (stored: StoredPayload | undefined): Payload | undefined =>
  stored === undefined ? undefined : { binary: Buffer.from(stored[0], "base64"), json: stored[1] }

/** The column's text for an event's facts. */
export const detailsText = (facts: EventFacts): string => {
  const stored: StoredDetails = {
    errorInfo: storedPayload(facts.errorInfo),
    logInfo: facts.logInfo.length === 0
      ? undefined
      : facts.logInfo.map((log) => [log.name, base64(log.payload.binary), log.payload.json] as const),
    logContext: storedPayload(facts.logContext),
    cluster: facts.cluster === "" ? undefined : facts.cluster,
    outputs: storedPayload(facts.outputs),
    cacheStatus: facts.cacheStatus === 0 ? undefined : facts.cacheStatus,
    clusterEvents: facts.clusterEvents.length === 0
      ? undefined
      : facts.clusterEvents.map((event) => [event.occurredAt.getTime(), event.message] as const)
  }
  return JSON.stringify(stored)
}

/** The facts a column's text holds. */
export const detailsOf = (text: string): EventDetails => {
  const stored = JSON.parse(text) as StoredDetails
  return {
    errorInfo: payloadOf(stored.errorInfo),
    logInfo: (stored.logInfo ?? []).map(([name, binary, json]) => ({ name, payload: payloadOf([binary, json])! })),
    logContext: payloadOf(stored.logContext),
    cluster: stored.cluster ?? "",
    outputs: payloadOf(stored.outputs),
    cacheStatus: stored.cacheStatus ?? 0,
    clusterEvents: (stored.clusterEvents ?? []).map(([millis, message]) => ({ occurredAt: new Date(millis), message }))
  }
}

/** What an event stored before its facts were kept, and not filled yet, reads as: its key and times only. */
export const noDetails: EventDetails = detailsOf("{}")
