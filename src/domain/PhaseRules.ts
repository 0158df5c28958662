import type { StatusReport } from "./Events.js"
import { ActionPhase, isTerminal } from "./Phase.js"
import type { ActionRecord } from "./Records.js"

/**
 * A phase's place in the order QUEUED < WAITING_FOR_RESOURCES < INITIALIZING < RUNNING < {PAUSED and the
 * terminal phases}, which share the last place. UNSPECIFIED has none (0).
 */
export const phaseOrder = (phase: ActionPhase): number =>
  phase === ActionPhase.UNSPECIFIED ? 0 : phase <= ActionPhase.RUNNING ? phase : ActionPhase.RUNNING + 1

/** Whether `next` comes strictly after `current` in {@link phaseOrder}. */
export const isLaterPhase = (next: ActionPhase, current: ActionPhase): boolean =>
  phaseOrder(next) > phaseOrder(current)

export interface StatusContext {
  /** The phase of the run's root action; once ABORTED, no action of the run leaves a terminal phase. */
  readonly rootPhase: ActionPhase
  readonly now: Date
}

/** A reported attempt count of 0 means "not reported". */
const isRetry = (current: ActionRecord, report: StatusReport): boolean =>
  report.attempts > 0 && report.attempts > current.attempts

/** Whether a status update with `report.phase` is applied to `current` (SPEC 4). */
export const accepts = (current: ActionRecord, report: StatusReport, rootPhase: ActionPhase): boolean => {
  const next = report.phase
  const phase = current.phase
  if (next === ActionPhase.UNSPECIFIED) return false
  if (next === phase) return true
  if (isTerminal(phase) && rootPhase === ActionPhase.ABORTED) return false
  switch (phase) {
    case ActionPhase.SUCCEEDED:
    case ActionPhase.ABORTED:
      return false
    case ActionPhase.FAILED:
    case ActionPhase.TIMED_OUT:
      return isRetry(current, report)
    case ActionPhase.PAUSED:
      return isTerminal(next)
    default:
      return isLaterPhase(next, phase)
  }
}

const earlier = (a: Date, b: Date | undefined): Date => (b !== undefined && b.getTime() < a.getTime() ? b : a)
const notBefore = (time: Date, start: Date): Date => (time.getTime() < start.getTime() ? start : time)

/**
 * Applies a status update to an action (SPEC 4): the updated action, or undefined when the update is stale
 * (acknowledged, changes nothing).
 */
export const applyStatus = (
  current: ActionRecord,
  report: StatusReport,
  context: StatusContext
): ActionRecord | undefined => {
  if (!accepts(current, report, context.rootPhase)) return undefined
  const phase = report.phase
  const startedAt = earlier(current.startedAt, report.startTime)
  const refresh = phase === current.phase
  const endedAt = !isTerminal(phase)
    ? undefined
    : notBefore(
      report.endTime ?? (refresh ? current.endedAt : undefined) ?? context.now,
      startedAt
    )
  return {
    ...current,
    phase,
    attempts: Math.max(current.attempts, report.attempts),
    // The executor sends the cache status with the attempt count; a report without attempts has neither.
    cacheStatus: report.attempts > 0 ? report.cacheStatus : current.cacheStatus,
    startedAt,
    endedAt,
    updatedAt: context.now
  }
}
