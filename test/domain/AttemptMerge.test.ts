import { describe, expect, it } from "@effect/vitest"
import { mergeAttempt, mergeEvents } from "../../src/domain/AttemptMerge.js"
import type { EventFacts } from "../../src/domain/Events.js"
import type { Payload } from "../../src/domain/Payload.js"
import { ActionPhase } from "../../src/domain/Phase.js"

const t = (seconds: number) => new Date(Date.UTC(2025, 0, 1, 0, 0, seconds))
const payload = (text: string): Payload => ({ binary: new TextEncoder().encode(text), json: JSON.stringify(text) })
const log = (name: string, uri: string) => ({ name, payload: payload(`${name}:${uri}`) })

const event = (phase: ActionPhase, seconds: number, overrides: Partial<EventFacts> = {}): EventFacts => ({
  attempt: 1,
  phase,
  version: 0,
  reportedTime: t(seconds),
  updatedTime: t(seconds),
  errorInfo: undefined,
  logInfo: [],
  logContext: undefined,
  cluster: "",
  outputs: undefined,
  cacheStatus: 0,
  clusterEvents: [],
  ...overrides
})

const { QUEUED, INITIALIZING, RUNNING, SUCCEEDED, FAILED, ABORTED, WAITING_FOR_RESOURCES } = ActionPhase

const failedAttempt: ReadonlyArray<EventFacts> = [
  event(QUEUED, 10, { cluster: "c1", clusterEvents: [{ occurredAt: t(9), message: "queued" }] }),
  event(INITIALIZING, 12, { cluster: "c1", clusterEvents: [{ occurredAt: t(11), message: "pulling image" }] }),
  event(RUNNING, 15, {
    logInfo: [log("stdout", "a"), log("dashboard", "a")],
    logContext: payload("pod-1"),
    cacheStatus: 1,
    clusterEvents: [{ occurredAt: t(14), message: "started" }]
  }),
  event(RUNNING, 18, { version: 1, logInfo: [log("stdout", "b")] }),
  event(FAILED, 30, { errorInfo: payload("OOMKilled"), clusterEvents: [{ occurredAt: t(29), message: "oom" }] })
]

describe("mergeAttempt", () => {
  it("rebuilds a realistic failed attempt", () => {
    expect(mergeAttempt(failedAttempt)).toEqual({
      attempt: 1,
      phase: FAILED,
      startTime: t(10),
      endTime: t(30),
      outputs: undefined,
      logInfo: [payload("dashboard:a"), payload("stdout:b")],
      logContext: payload("pod-1"),
      errorInfo: payload("OOMKilled"),
      cluster: "c1",
      cacheStatus: 1,
      logsAvailable: true,
      phaseTransitions: [
        { phase: QUEUED, startTime: t(10), endTime: t(12) },
        { phase: INITIALIZING, startTime: t(12), endTime: t(15) },
        { phase: RUNNING, startTime: t(15), endTime: t(30) },
        { phase: FAILED, startTime: t(30), endTime: t(30) }
      ],
      clusterEvents: [
        { occurredAt: t(9), message: "queued" },
        { occurredAt: t(11), message: "pulling image" },
        { occurredAt: t(14), message: "started" },
        { occurredAt: t(29), message: "oom" }
      ]
    })
  })

  it("is decided by the earliest terminal event; later ones still bring logs and cluster events", () => {
    const merged = mergeAttempt([
      event(RUNNING, 10),
      event(SUCCEEDED, 20, { outputs: payload("out") }),
      event(FAILED, 25, {
        errorInfo: payload("late"),
        logInfo: [log("stdout", "late")],
        clusterEvents: [{ occurredAt: t(25), message: "late" }]
      })
    ])
    expect(merged).toMatchObject({
      phase: SUCCEEDED,
      endTime: t(20),
      outputs: payload("out"),
      errorInfo: undefined,
      logInfo: [payload("stdout:late")],
      clusterEvents: [{ occurredAt: t(25), message: "late" }],
      phaseTransitions: [
        { phase: RUNNING, startTime: t(10), endTime: t(20) },
        { phase: SUCCEEDED, startTime: t(20), endTime: t(20) }
      ]
    })
  })

  it("takes phase, outputs and error from the latest event when none is terminal", () => {
    const merged = mergeAttempt([
      event(QUEUED, 10, { errorInfo: payload("old") }),
      event(RUNNING, 20, { outputs: payload("partial") })
    ])
    expect(merged).toMatchObject({ phase: RUNNING, startTime: t(10), endTime: undefined, errorInfo: undefined })
    expect(merged.outputs).toEqual(payload("partial"))
    expect(merged.phaseTransitions).toEqual([
      { phase: QUEUED, startTime: t(10), endTime: t(20) },
      { phase: RUNNING, startTime: t(20), endTime: undefined }
    ])
  })

  it("merges log info by name, the latest event winning, sorted by name", () => {
    const merged = mergeAttempt([
      event(RUNNING, 30, { version: 2, logInfo: [log("stdout", "v2")] }),
      event(RUNNING, 10, { logInfo: [log("stdout", "v0"), log("b-metrics", "v0")] }),
      event(RUNNING, 20, { version: 1, logInfo: [log("a-dash", "v1"), log("b-metrics", "v1")] })
    ])
    expect(merged.logInfo).toEqual([payload("a-dash:v1"), payload("b-metrics:v1"), payload("stdout:v2")])
  })

  it("takes log context, cluster and cache status from the latest event that has them", () => {
    const merged = mergeAttempt([
      event(QUEUED, 10, { cluster: "c1", cacheStatus: 2, logContext: payload("ctx1") }),
      event(RUNNING, 20, { cluster: "c2", logContext: payload("ctx2") }),
      event(RUNNING, 30, { version: 1 })
    ])
    expect(merged).toMatchObject({ cluster: "c2", cacheStatus: 2, logContext: payload("ctx2"), logsAvailable: true })
    expect(mergeAttempt([event(RUNNING, 10)])).toMatchObject({ cluster: undefined, cacheStatus: 0, logsAvailable: false })
  })

  it("orders by reported time before updated time, and uses the updated time", () => {
    const merged = mergeAttempt([
      event(RUNNING, 0, { reportedTime: t(20), updatedTime: t(15) }),
      event(QUEUED, 0, { reportedTime: t(10), updatedTime: t(30) }),
      event(SUCCEEDED, 0, { reportedTime: t(40), updatedTime: undefined })
    ])
    expect(merged.phaseTransitions.map((transition) => transition.phase)).toEqual([QUEUED, RUNNING, SUCCEEDED])
    expect(merged).toMatchObject({ startTime: t(30), endTime: t(40) })
  })

  it("never ends before it starts", () => {
    const merged = mergeAttempt([
      event(QUEUED, 0, { reportedTime: t(10), updatedTime: t(50) }),
      event(ABORTED, 0, { reportedTime: t(20), updatedTime: t(40) })
    ])
    expect(merged).toMatchObject({ phase: ABORTED, startTime: t(50), endTime: t(50) })
  })

  it("gives events without times the first known time; no times at all give none", () => {
    const timeless = { reportedTime: undefined, updatedTime: undefined }
    const merged = mergeAttempt([event(QUEUED, 0, timeless), event(RUNNING, 20)])
    expect(merged.startTime).toEqual(t(20))
    expect(merged.phaseTransitions).toEqual([
      { phase: QUEUED, startTime: t(20), endTime: t(20) },
      { phase: RUNNING, startTime: t(20), endTime: undefined }
    ])
    expect(mergeAttempt([event(RUNNING, 0, timeless)])).toMatchObject({
      phase: RUNNING,
      startTime: undefined,
      phaseTransitions: []
    })
  })
})

describe("mergeEvents", () => {
  it("groups by attempt ascending, attempt 0 counting as 1", () => {
    const merged = mergeEvents([
      event(RUNNING, 40, { attempt: 2 }),
      event(FAILED, 30, { attempt: 1 }),
      event(QUEUED, 10, { attempt: 0 }),
      event(QUEUED, 35, { attempt: 2 })
    ])
    expect(merged.map((attempt) => [attempt.attempt, attempt.phase])).toEqual([[1, FAILED], [2, RUNNING]])
    expect(merged[0]?.phaseTransitions.map((transition) => transition.phase)).toEqual([QUEUED, FAILED])
  })
})

/** mulberry32: a small seeded PRNG, so every run shuffles the same way. */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
  return ((x ^ (x >>> 14)) >>> 0) / 4294967296
}

const shuffledWithDuplicates = <A>(items: ReadonlyArray<A>, random: () => number): ReadonlyArray<A> => {
  const out = [...items]
  const duplicates = Math.floor(random() * 4)
  for (let i = 0; i < duplicates; i++) out.push(items[Math.floor(random() * items.length)]!)
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

const eventSets: Record<string, ReadonlyArray<EventFacts>> = {
  failed: failedAttempt,
  "terminal first wins": [
    event(QUEUED, 5),
    event(RUNNING, 10, { logContext: payload("ctx") }),
    event(SUCCEEDED, 20, { outputs: payload("out") }),
    event(FAILED, 25, { errorInfo: payload("late"), logInfo: [log("stdout", "late")] }),
    event(RUNNING, 30, { version: 1, clusterEvents: [{ occurredAt: t(30), message: "late" }] })
  ],
  "same times, ordered by version and phase": [
    event(QUEUED, 10),
    event(WAITING_FOR_RESOURCES, 10, { cluster: "c1" }),
    event(RUNNING, 10, { version: 1, cluster: "c2", logInfo: [log("x", "1")] }),
    event(RUNNING, 10, { version: 2, logInfo: [log("x", "2")] }),
    event(ABORTED, 10, { version: 1 })
  ],
  "missing times": [
    event(QUEUED, 0, { reportedTime: undefined, updatedTime: undefined, cacheStatus: 3 }),
    event(INITIALIZING, 0, { reportedTime: undefined, updatedTime: t(12) }),
    event(RUNNING, 0, { reportedTime: t(15), updatedTime: undefined, cacheStatus: 1 }),
    event(RUNNING, 20, { version: 1 })
  ]
}

describe("mergeAttempt order independence", () => {
  for (const [name, events] of Object.entries(eventSets)) {
    it(`gives the same attempt for 50 shuffles with re-sent events: ${name}`, () => {
      const expected = mergeAttempt(events)
      const random = prng(name.length * 7919)
      for (let i = 0; i < 50; i++) {
        expect(mergeAttempt(shuffledWithDuplicates(events, random))).toEqual(expected)
      }
      expect(mergeEvents(shuffledWithDuplicates(events, random))).toEqual([expected])
    })
  }
})
