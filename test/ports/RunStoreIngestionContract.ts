import { expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import type { RebuildAttempt, StoredEvent } from "../../src/domain/Events.js"
import { type ActionKey, actionKeyText } from "../../src/domain/Ids.js"
import { ActionPhase } from "../../src/domain/Phase.js"
import type { AttemptRecord } from "../../src/domain/Records.js"
import { RunStore } from "../../src/ports/RunStore.js"
import type { Backend } from "../support/backends.js"
import { actionKey, at, childAction, comparable, payload, runView, storedEvent } from "../support/Fixtures.js"

const byKey = (a: StoredEvent, b: StoredEvent) =>
  actionKeyText(a.key).localeCompare(actionKeyText(b.key)) || a.attempt - b.attempt || a.phase - b.phase ||
  a.version - b.version

/**
 * A stand-in for the attempt merge (another module's): the same result for the events in any order, and it
 * shows which events it saw: one cluster event `phase:version` each.
 */
const summary = (events: ReadonlyArray<StoredEvent>): AttemptRecord => {
  const sorted = [...events].sort(byKey)
  const times = events.flatMap((event) => (event.updatedTime === undefined ? [] : [event.updatedTime.getTime()]))
  return {
    attempt: sorted[0]!.attempt,
    phase: Math.max(...events.map((event) => event.phase)) as ActionPhase,
    startTime: times.length === 0 ? undefined : new Date(Math.min(...times)),
    endTime: undefined,
    outputs: undefined,
    logInfo: [],
    logContext: undefined,
    errorInfo: undefined,
    cluster: undefined,
    cacheStatus: 0,
    logsAvailable: false,
    phaseTransitions: [],
    clusterEvents: sorted.map((event) => ({
      occurredAt: event.updatedTime ?? at(0),
      message: `${event.phase}:${event.version}`
    }))
  }
}

/** `summary`, counting its calls and keeping what each one saw. */
const recorder = () => {
  const calls: Array<ReadonlyArray<StoredEvent>> = []
  const rebuild: RebuildAttempt = (events) => {
    calls.push(events)
    return summary(events)
  }
  return { calls, rebuild }
}

// The event log keeps each event's binary form (events read back from it have no JSON there) and the facts
// the merge reads, which `storedEvent` sets to distinct values: each comparison below checks them read back.
const sorted = (events: ReadonlyArray<StoredEvent>) =>
  comparable([...events].sort(byKey).map((event) => ({ ...event, raw: event.raw.binary })))

/** What the RunStore does for ingestion: the event log, the attempts rebuilt from it, and status updates. */
export const runStoreIngestionContract = (backend: Backend<RunStore>): void => {
  const provided = <A, E>(effect: Effect.Effect<A, E, RunStore>) => Effect.provide(effect, backend.layer)
  const attemptsOf = (store: RunStore["Type"], key: ActionKey) =>
    Effect.map(store.listAttempts(key), (list) => comparable(list))

  it.effect("recordEvents stores the events and rebuilds each attempt they touch from all of its events", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const view = runView()
      const key = view.root.key
      yield* store.createRun({ view, task: undefined })
      const { calls, rebuild } = recorder()
      const queued = storedEvent(key, { phase: ActionPhase.QUEUED, reportedTime: undefined })
      const running = storedEvent(key, { updatedTime: undefined })
      const again = storedEvent(key, { version: 1, raw: { binary: Uint8Array.from([0, 0xff]), json: "{}" } })
      expect(yield* store.recordEvents([running], rebuild)).toEqual([key])
      expect(yield* store.recordEvents([again, queued], rebuild)).toEqual([key])
      expect(calls.map((call) => call.length)).toEqual([1, 3])
      expect(sorted(calls[1]!)).toStrictEqual(sorted([queued, running, again]))
      expect(yield* attemptsOf(store, key)).toStrictEqual(comparable([summary([queued, running, again])]))
      expect(yield* store.recordEvents([], rebuild)).toEqual([])
      expect(calls).toHaveLength(2)
    })))

  it.effect("a re-sent event is ignored: the first one stored under its key wins, within a batch too", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const view = runView()
      const key = view.root.key
      yield* store.createRun({ view, task: undefined })
      const { calls, rebuild } = recorder()
      const first = storedEvent(key)
      yield* store.recordEvents([first], rebuild)
      const resent = { ...first, updatedTime: at(999), raw: payload({ resent: true }) }
      const queued = storedEvent(key, { phase: ActionPhase.QUEUED })
      yield* store.recordEvents([resent, queued], rebuild)
      expect(sorted(calls[1]!)).toStrictEqual(sorted([first, queued]))
      const twin = storedEvent(key, { version: 2 })
      yield* store.recordEvents([twin, { ...twin, raw: payload({ twin: 2 }) }, resent], rebuild)
      expect(sorted(calls[2]!)).toStrictEqual(sorted([first, queued, twin]))
      expect(yield* attemptsOf(store, key)).toStrictEqual(comparable([summary([first, queued, twin])]))
    })))

  it.effect("events before their action are kept; recordAction rebuilds their attempts when it creates it", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const view = runView()
      yield* store.createRun({ view, task: undefined })
      const { calls, rebuild } = recorder()
      const child = childAction(view, "c1")
      const one = [storedEvent(child.key, { phase: ActionPhase.QUEUED }), storedEvent(child.key)]
      const two = [storedEvent(child.key, { attempt: 2 })]
      expect(yield* store.recordEvents([one[0]!, two[0]!, one[1]!], rebuild)).toEqual([child.key])
      expect(calls).toHaveLength(0)
      expect(yield* store.listAttempts(child.key)).toEqual([])
      expect(yield* store.recordAction(child, rebuild)).toBe(true)
      expect(calls).toHaveLength(2)
      expect(yield* attemptsOf(store, child.key)).toStrictEqual(comparable([summary(one), summary(two)]))
      expect(comparable(Option.getOrThrow(yield* store.getAction(child.key)))).toStrictEqual(comparable(child))
      expect(yield* store.recordAction({ ...child, group: "changed" }, rebuild)).toBe(false)
      const bare = childAction(view, "c2")
      expect(yield* store.recordAction(bare, rebuild)).toBe(true)
      expect(calls).toHaveLength(2)
      expect(yield* store.listAttempts(bare.key)).toEqual([])
    })))

  it.effect("events of a run not created yet are stored without failing, and count once the action exists", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const view = runView()
      const child = childAction(view, "c1")
      const { calls, rebuild } = recorder()
      const early = [storedEvent(view.root.key), storedEvent(child.key)]
      expect(yield* store.recordEvents(early, rebuild)).toEqual([view.root.key, child.key])
      expect(calls).toHaveLength(0)
      yield* store.createRun({ view, task: undefined })
      yield* store.recordAction(child, rebuild)
      expect(yield* attemptsOf(store, child.key)).toStrictEqual(comparable([summary([early[1]!])]))
    })))

  it.effect("a batch over two attempts of one action and two actions rebuilds each attempt once", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const view = runView()
      const root = view.root.key
      const child = childAction(view, "c1")
      const missing = actionKey(view, "c9")
      yield* store.createRun({ view, task: undefined })
      yield* store.recordAction(child)
      const { calls, rebuild } = recorder()
      const batch = [
        storedEvent(child.key, { phase: ActionPhase.QUEUED }),
        storedEvent(root, { phase: ActionPhase.QUEUED }),
        storedEvent(root, { attempt: 2, phase: ActionPhase.QUEUED }),
        storedEvent(missing),
        storedEvent(child.key),
        storedEvent(root),
        storedEvent(root, { attempt: 2, phase: ActionPhase.FAILED, version: 3 })
      ]
      expect(yield* store.recordEvents(batch, rebuild)).toEqual([child.key, root, missing])
      expect(calls.map((call) => `${call[0]!.key.name}/${call[0]!.attempt}:${call.length}`).sort())
        .toEqual(["a0/1:2", "a0/2:2", "c1/1:2"])
      const of = (key: ActionKey, attempt: number) =>
        batch.filter((event) => actionKeyText(event.key) === actionKeyText(key) && event.attempt === attempt)
      expect(yield* attemptsOf(store, root)).toStrictEqual(comparable([summary(of(root, 1)), summary(of(root, 2))]))
      expect(yield* attemptsOf(store, child.key)).toStrictEqual(comparable([summary(of(child.key, 1))]))
      expect(yield* store.listAttempts(missing)).toEqual([])
    })))

  it.effect("getRunDetails and getActionDetails read the run or action with its attempts; None when missing", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const view = runView()
      const root = view.root.key
      const child = childAction(view, "c1")
      yield* store.createRun({ view, task: undefined })
      yield* store.recordAction(child)
      const { rebuild } = recorder()
      yield* store.recordEvents([
        storedEvent(root, { phase: ActionPhase.QUEUED }),
        storedEvent(root, { attempt: 2, phase: ActionPhase.RUNNING }),
        storedEvent(child.key, { phase: ActionPhase.QUEUED })
      ], rebuild)

      const run = Option.getOrThrow(yield* store.getRunDetails(view.run.key))
      expect(comparable(run.view)).toStrictEqual(comparable(Option.getOrThrow(yield* store.getRun(view.run.key))))
      expect(comparable(run.attempts)).toStrictEqual(yield* attemptsOf(store, root))
      expect(run.attempts.map((attempt) => attempt.attempt)).toEqual([1, 2])

      const action = Option.getOrThrow(yield* store.getActionDetails(child.key))
      expect(comparable(action.action)).toStrictEqual(comparable(Option.getOrThrow(yield* store.getAction(child.key))))
      expect(comparable(action.attempts)).toStrictEqual(yield* attemptsOf(store, child.key))
      expect(action.attempts).toHaveLength(1)

      expect(Option.isNone(yield* store.getRunDetails({ ...view.run.key, name: "missing" }))).toBe(true)
      expect(Option.isNone(yield* store.getActionDetails(actionKey(view, "c9")))).toBe(true)
    })))

  it.effect("100 events in one batch are all stored, and each attempt they touch is rebuilt once", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const view = runView()
      const names = ["a0", "c1", "c2"]
      yield* store.createRun({ view, task: undefined })
      yield* store.recordAction(childAction(view, "c1"))
      const { calls, rebuild } = recorder()
      const batch = Array.from({ length: 100 }, (_, i) =>
        storedEvent(actionKey(view, names[i % 3]!), { attempt: 1 + (i % 4), version: i }))
      expect(yield* store.recordEvents(batch, rebuild)).toEqual(names.map((name) => actionKey(view, name)))
      expect(calls).toHaveLength(8)
      expect(calls.reduce((sum, call) => sum + call.length, 0)).toBe(67)
      yield* store.recordAction(childAction(view, "c2"), rebuild)
      expect(calls).toHaveLength(12)
      expect(calls.reduce((sum, call) => sum + call.length, 0)).toBe(100)
      for (const name of names) {
        const key = actionKey(view, name)
        const expected = [1, 2, 3, 4].map((n) =>
          summary(batch.filter((event) => event.key.name === name && event.attempt === n)))
        expect(yield* attemptsOf(store, key)).toStrictEqual(comparable(expected))
      }
    })))

  it.effect("updateAction: Missing for an unknown action or run; Unchanged when apply returns undefined", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const view = runView({ phase: ActionPhase.RUNNING })
      yield* store.createRun({ view, task: undefined })
      const seen: Array<unknown> = []
      const look = (current: unknown) => {
        seen.push(comparable(current))
        return undefined
      }
      for (const key of [actionKey(view, "c9"), { run: { ...view.run.key, name: "nope" }, name: "a0" }]) {
        expect(yield* store.updateAction(key, look)).toEqual({ _tag: "Missing" })
      }
      expect(seen).toHaveLength(0)
      const outcome = yield* store.updateAction(view.root.key, look)
      expect(comparable(outcome)).toStrictEqual(comparable({ _tag: "Unchanged", action: view.root }))
      expect(seen).toStrictEqual([comparable(view.root)])
      expect(comparable(Option.getOrThrow(yield* store.getRun(view.run.key)))).toStrictEqual(comparable(view))
    })))

  it.effect("updateAction writes every field apply returns and answers the action as stored", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const view = runView({ phase: ActionPhase.RUNNING })
      const child = childAction(view, "c1")
      yield* store.createRun({ view, task: undefined })
      yield* store.recordAction(child)
      const changed = {
        ...child,
        phase: ActionPhase.FAILED,
        attempts: 3,
        cacheStatus: 2,
        group: "g2",
        task: { ...child.task!, name: "other.task", version: "v9" },
        taskType: "container",
        shortName: "s2",
        functionName: "f2",
        environmentName: "e2",
        triggerName: "t2",
        createdBy: "bob",
        spec: { kind: "trace" as const, payload: payload({ trace: 1 }) },
        metadata: payload({ condition: true }),
        inputUri: "file:///other",
        runOutputBase: "file:///out/",
        startedAt: at(100),
        endedAt: at(103),
        abort: { reason: "why", abortedBy: "carol" },
        errorInfo: payload({ message: "boom" }),
        updatedAt: at(104)
      }
      const cleared = {
        ...changed,
        phase: ActionPhase.RUNNING,
        group: undefined,
        task: undefined,
        spec: undefined,
        metadata: undefined,
        endedAt: undefined,
        abort: undefined,
        errorInfo: undefined,
        updatedAt: at(105)
      }
      for (const next of [changed, cleared]) {
        const outcome = yield* store.updateAction(child.key, () => next)
        expect(comparable(outcome)).toStrictEqual(comparable({ _tag: "Updated", action: next }))
        expect(comparable(Option.getOrThrow(yield* store.getAction(child.key)))).toStrictEqual(comparable(next))
      }
      const root = { ...view.root, phase: ActionPhase.SUCCEEDED, endedAt: at(200), updatedAt: at(200) }
      yield* store.updateAction(view.root.key, () => root)
      expect(comparable(Option.getOrThrow(yield* store.getRun(view.run.key)).root)).toStrictEqual(comparable(root))
    })))

  it.effect("updateAction is atomic: concurrent updates of one action lose none", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const view = runView({ phase: ActionPhase.RUNNING })
      const child = childAction(view, "c1", { attempts: 1 })
      yield* store.createRun({ view, task: undefined })
      yield* store.recordAction(child)
      const outcomes = yield* Effect.forEach(
        Array.from({ length: 24 }, (_, index) => index),
        (index) => store.updateAction(child.key, (current) => ({ ...current, attempts: current.attempts + 1, updatedAt: at(index) })),
        { concurrency: "unbounded" }
      )
      expect(outcomes.map((outcome) => outcome._tag)).toStrictEqual(Array.from({ length: 24 }, () => "Updated"))
      // Each answer is the action as its own write left it: 24 different counts, 2 to 25.
      const counts = outcomes.map((outcome) => (outcome._tag === "Updated" ? outcome.action.attempts : 0))
      expect([...counts].sort((a, b) => a - b)).toStrictEqual(Array.from({ length: 24 }, (_, index) => index + 2))
      expect(Option.getOrThrow(yield* store.getAction(child.key)).attempts).toBe(25)
    })))

  it.effect("updateAction passes the run's root phase: its own for the root, the root's for a child", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const view = runView({ phase: ActionPhase.RUNNING })
      const child = childAction(view, "c1", { phase: ActionPhase.SUCCEEDED })
      yield* store.createRun({ view, task: undefined })
      yield* store.recordAction(child)
      const rootPhaseSeenBy = (key: ActionKey) =>
        Effect.gen(function*() {
          let seen: ActionPhase | undefined
          yield* store.updateAction(key, (_, context) => {
            seen = context.rootPhase
            return undefined
          })
          return seen
        })
      expect(yield* rootPhaseSeenBy(view.root.key)).toBe(ActionPhase.RUNNING)
      expect(yield* rootPhaseSeenBy(child.key)).toBe(ActionPhase.RUNNING)
      yield* store.abort(view.root.key, { reason: "stop", abortedBy: undefined }, at(500))
      expect(yield* rootPhaseSeenBy(child.key)).toBe(ActionPhase.ABORTED)
      expect(yield* rootPhaseSeenBy(view.root.key)).toBe(ActionPhase.ABORTED)
    })))
}
