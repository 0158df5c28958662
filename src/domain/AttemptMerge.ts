import type { EventFacts } from "./Events.js"
import type { Payload } from "./Payload.js"
import { ActionPhase, isTerminal } from "./Phase.js"
import type { AttemptRecord, ClusterEvent, PhaseTransition } from "./Records.js"

/** An event with attempt 0 counts as attempt 1 (SPEC 6). */
const attemptOf = (event: EventFacts): number => Math.max(1, event.attempt)

/** Missing times sort first. */
const compareTimes = (a: Date | undefined, b: Date | undefined): number =>
  a === undefined ? (b === undefined ? 0 : -1) : b === undefined ? 1 : a.getTime() - b.getTime()

/** The order "earliest" and "latest" refer to: reported time, updated time, version, then phase. */
export const compareEvents = (a: EventFacts, b: EventFacts): number =>
  compareTimes(a.reportedTime, b.reportedTime) ||
  compareTimes(a.updatedTime, b.updatedTime) ||
  a.version - b.version ||
  a.phase - b.phase

/** The events in order, one per (phase, version): that is the event log's key, so the rest are re-sends. */
const ordered = (events: ReadonlyArray<EventFacts>): ReadonlyArray<EventFacts> => {
  const seen = new Set<string>()
  return [...events].sort(compareEvents).filter((event) => {
    const key = `${event.phase}/${event.version}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

const latest = <A>(events: ReadonlyArray<EventFacts>, pick: (event: EventFacts) => A | undefined): A | undefined => {
  for (let i = events.length - 1; i >= 0; i--) {
    const value = pick(events[i]!)
    if (value !== undefined) return value
  }
  return undefined
}

const notBefore = (time: Date, start: Date): Date => (time.getTime() < start.getTime() ? start : time)

/**
 * The walk over events in order: the first occurrence of each phase opens a transition and closes the
 * previous one; a terminal phase closes itself and ends the walk.
 */
const transitionsOf = (
  events: ReadonlyArray<EventFacts>,
  timeOf: (event: EventFacts) => Date
): ReadonlyArray<PhaseTransition> => {
  const transitions: Array<PhaseTransition> = []
  for (const event of events) {
    if (transitions.some((transition) => transition.phase === event.phase)) continue
    const startTime = timeOf(event)
    const previous = transitions.at(-1)
    if (previous !== undefined) transitions[transitions.length - 1] = { ...previous, endTime: startTime }
    if (isTerminal(event.phase)) {
      transitions.push({ phase: event.phase, startTime, endTime: startTime })
      break
    }
    transitions.push({ phase: event.phase, startTime, endTime: undefined })
  }
  return transitions
}

const mergeLogInfo = (events: ReadonlyArray<EventFacts>): ReadonlyArray<Payload> => {
  const byName = new Map<string, Payload>()
  for (const event of events) for (const log of event.logInfo) byName.set(log.name, log.payload)
  return [...byName.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map((name) => byName.get(name)!)
}

type Timing = Pick<AttemptRecord, "startTime" | "endTime" | "phaseTransitions">

/** Start, end and transitions, from each event's updated time, else its reported time. */
const timingOf = (sorted: ReadonlyArray<EventFacts>, deciding: EventFacts | undefined): Timing => {
  const timed = sorted.find((event) => (event.updatedTime ?? event.reportedTime) !== undefined)
  const startTime = timed?.updatedTime ?? timed?.reportedTime
  if (startTime === undefined) return { startTime: undefined, endTime: undefined, phaseTransitions: [] }
  // Events without any time sort first; they take the first known time, which is also the start.
  const timeOf = (event: EventFacts): Date => event.updatedTime ?? event.reportedTime ?? startTime
  const endTime = deciding !== undefined && isTerminal(deciding.phase)
    ? notBefore(timeOf(deciding), startTime)
    : undefined
  return { startTime, endTime, phaseTransitions: transitionsOf(sorted, timeOf) }
}

/** Rebuilds one attempt from all of its events, in any order and with re-sent duplicates (SPEC 6). */
export const mergeAttempt = (events: ReadonlyArray<EventFacts>): AttemptRecord => {
  const sorted = ordered(events)
  const deciding = sorted.find((event) => isTerminal(event.phase)) ?? sorted.at(-1)
  return {
    attempt: sorted.reduce((highest, event) => Math.max(highest, attemptOf(event)), 1),
    phase: deciding?.phase ?? ActionPhase.UNSPECIFIED,
    ...timingOf(sorted, deciding),
    outputs: deciding?.outputs,
    logInfo: mergeLogInfo(sorted),
    logContext: latest(sorted, (event) => event.logContext),
    errorInfo: deciding?.errorInfo,
    cluster: latest(sorted, (event) => (event.cluster === "" ? undefined : event.cluster)),
    cacheStatus: latest(sorted, (event) => (event.cacheStatus === 0 ? undefined : event.cacheStatus)) ?? 0,
    logsAvailable: sorted.some((event) => event.logContext !== undefined),
    clusterEvents: sorted.flatMap((event): ReadonlyArray<ClusterEvent> => event.clusterEvents)
  }
}

/** Every attempt the events describe, by attempt number ascending. */
export const mergeEvents = (events: ReadonlyArray<EventFacts>): ReadonlyArray<AttemptRecord> => {
  const byAttempt = new Map<number, Array<EventFacts>>()
  for (const event of events) {
    const group = byAttempt.get(attemptOf(event))
    if (group === undefined) byAttempt.set(attemptOf(event), [event])
    else group.push(event)
  }
  return [...byAttempt.keys()].sort((a, b) => a - b).map((attempt) => mergeAttempt(byAttempt.get(attempt)!))
}
