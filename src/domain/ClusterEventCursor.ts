import { isTerminal } from "./Phase.js"
import type { ActionRecord, AttemptRecord, ClusterEvent } from "./Records.js"
import { latestAttempt } from "./Status.js"

/** An action with its attempts, as a watch reads it. */
export interface ActionState {
  readonly action: ActionRecord
  readonly attempts: ReadonlyArray<AttemptRecord>
}

/** Terminal, and so is its latest attempt if it has one: nothing more will change (SPEC 8). */
export const isSettled = (state: ActionState): boolean => {
  const latest = latestAttempt(state.attempts)
  return isTerminal(state.action.phase) && (latest === undefined || isTerminal(latest.phase))
}

const eventKey = (event: ClusterEvent) => `${event.occurredAt.getTime()}\u0000${event.message}`

/**
 * What WatchClusterEvents sends as an action changes: the followed attempts' cluster events not sent yet,
 * each once, even when a late event lands in the middle of an attempt's list. Attempt 0 follows the latest
 * attempt from the first read on (waiting for one if there is none), moving on to each new attempt.
 */
export const makeClusterEventCursor = (requested: number) => {
  /** Per attempt: how many times each event has been sent. */
  const sent = new Map<number, Map<string, number>>()
  let from: number | undefined = requested > 0 ? requested : undefined

  return (state: ActionState): { readonly events: ReadonlyArray<ClusterEvent>; readonly done: boolean } => {
    from ??= latestAttempt(state.attempts)?.attempt
    const followed = state.attempts
      .filter((attempt) => requested > 0 ? attempt.attempt === requested : from !== undefined && attempt.attempt >= from)
      .sort((a, b) => a.attempt - b.attempt)
    const events: Array<ClusterEvent> = []
    for (const attempt of followed) {
      const counts = sent.get(attempt.attempt) ?? new Map<string, number>()
      sent.set(attempt.attempt, counts)
      const seen = new Map<string, number>()
      for (const event of attempt.clusterEvents) {
        const key = eventKey(event)
        const n = (seen.get(key) ?? 0) + 1
        seen.set(key, n)
        if (n > (counts.get(key) ?? 0)) {
          counts.set(key, n)
          events.push(event)
        }
      }
    }
    const target = state.attempts.find((attempt) => attempt.attempt === requested)
    const done = requested > 0 ? target !== undefined && isTerminal(target.phase) : isSettled(state)
    return { events, done }
  }
}
