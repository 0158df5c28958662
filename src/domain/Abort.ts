import { ActionPhase, isTerminal } from "./Phase.js"
import type { AbortRecord, ActionRecord, AttemptRecord } from "./Records.js"

export const defaultAbortReason = "User requested abort"

/** The reason SPEC 5 records: the given one, or the default when it is absent or empty. */
export const abortReason = (given: string | undefined): string =>
  given === undefined || given === "" ? defaultAbortReason : given

/**
 * What an abort of `target` changes, given every action of its run: the target and its non-terminal
 * descendants at any depth (target first, then breadth-first), or nothing when the target is terminal.
 */
export const actionsToAbort = (
  actions: ReadonlyArray<Pick<ActionRecord, "key" | "parent" | "phase">>,
  target: string
): ReadonlyArray<string> => {
  const self = actions.find((action) => action.key.name === target)
  if (self === undefined || isTerminal(self.phase)) return []
  const children = new Map<string, Array<string>>()
  for (const action of actions) {
    if (action.parent === undefined) continue
    const list = children.get(action.parent) ?? []
    list.push(action.key.name)
    children.set(action.parent, list)
  }
  const phaseOf = new Map(actions.map((action) => [action.key.name, action.phase]))
  const result = [target]
  const queue = [target]
  const seen = new Set(queue)
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      if (seen.has(child)) continue
      seen.add(child)
      queue.push(child)
      if (!isTerminal(phaseOf.get(child) ?? ActionPhase.QUEUED)) result.push(child)
    }
  }
  return result
}

/** An action as an abort leaves it. */
export const abortAction = (action: ActionRecord, abort: AbortRecord, now: Date): ActionRecord => ({
  ...action,
  phase: ActionPhase.ABORTED,
  abort,
  endedAt: now.getTime() < action.startedAt.getTime() ? action.startedAt : now,
  updatedAt: now
})

/** The latest attempt as an abort leaves it: closed as ABORTED if it was still open, else unchanged. */
export const abortAttempt = (attempt: AttemptRecord, now: Date): AttemptRecord => {
  if (isTerminal(attempt.phase)) return attempt
  const end = attempt.startTime !== undefined && now.getTime() < attempt.startTime.getTime() ? attempt.startTime : now
  return {
    ...attempt,
    phase: ActionPhase.ABORTED,
    endTime: end,
    phaseTransitions: [
      ...attempt.phaseTransitions.map((transition) =>
        transition.endTime === undefined ? { ...transition, endTime: end } : transition
      ),
      { phase: ActionPhase.ABORTED, startTime: end, endTime: end }
    ]
  }
}
