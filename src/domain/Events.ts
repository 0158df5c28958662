import type { ActionKey } from "./Ids.js"
import type { Payload } from "./Payload.js"
import type { ActionPhase, CacheStatus } from "./Phase.js"
import type { AttemptRecord, ClusterEvent } from "./Records.js"

/** What the attempt merge reads of one event: taken from the event when it is received (attempt 0 reads as 1). */
export interface EventFacts {
  readonly attempt: number
  readonly phase: ActionPhase
  readonly version: number
  readonly reportedTime: Date | undefined
  readonly updatedTime: Date | undefined
  readonly errorInfo: Payload | undefined
  /** `core.TaskLog` entries with the name they merge by. */
  readonly logInfo: ReadonlyArray<{ readonly name: string; readonly payload: Payload }>
  readonly logContext: Payload | undefined
  /** Empty when the event names no cluster. */
  readonly cluster: string
  readonly outputs: Payload | undefined
  readonly cacheStatus: CacheStatus
  readonly clusterEvents: ReadonlyArray<ClusterEvent>
}

/**
 * An accepted `ActionEvent` as the event log keeps it: its key (action, attempt, phase, version), the facts the
 * attempt merge reads (so the merge never decodes the event again), and the raw event as received (the log
 * keeps its binary form: read back, it has no JSON). Attempt 0 is stored as attempt 1.
 */
export interface StoredEvent extends EventFacts {
  readonly key: ActionKey
  readonly raw: Payload
}

/** Rebuilds one attempt from all of its events (any order, duplicates removed by key). */
export type RebuildAttempt = (events: ReadonlyArray<StoredEvent>) => AttemptRecord

/** A status report of UpdateActionStatus, as the phase rules read it. */
export interface StatusReport {
  readonly phase: ActionPhase
  /** 0 means "not reported". */
  readonly attempts: number
  readonly cacheStatus: CacheStatus
  readonly startTime: Date | undefined
  readonly endTime: Date | undefined
}
