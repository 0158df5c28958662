import type { ActionPhase, CacheStatus } from "./Phase.js"
import { type ActionRecord, type AttemptRecord, durationMs } from "./Records.js"

/** An action's status as every response shows it; a run's status is its root action's. */
export interface ActionStatus {
  readonly phase: ActionPhase
  readonly startTime: Date
  readonly endTime: Date | undefined
  /** The highest of the stored count and the highest attempt number seen. */
  readonly attempts: number
  readonly cacheStatus: CacheStatus
  readonly durationMs: number | undefined
}

export const statusOf = (action: ActionRecord, attempts: ReadonlyArray<AttemptRecord> = []): ActionStatus => ({
  phase: action.phase,
  startTime: action.startedAt,
  endTime: action.endedAt,
  attempts: attempts.reduce((highest, attempt) => Math.max(highest, attempt.attempt), action.attempts),
  cacheStatus: action.cacheStatus,
  durationMs: durationMs(action)
})

/** The attempt with the highest number, if any. */
export const latestAttempt = (attempts: ReadonlyArray<AttemptRecord>): AttemptRecord | undefined =>
  attempts.reduce<AttemptRecord | undefined>(
    (latest, attempt) => (latest === undefined || attempt.attempt > latest.attempt ? attempt : latest),
    undefined
  )
