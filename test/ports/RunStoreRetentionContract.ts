import { expect, it } from "@effect/vitest"
import { Context, Data, Deferred, Effect, Fiber, Option } from "effect"
import type { RebuildAttempt } from "../../src/domain/Events.js"
import type { RunKey } from "../../src/domain/Ids.js"
import { ActionPhase } from "../../src/domain/Phase.js"
import { RunStore } from "../../src/ports/RunStore.js"
import type { Backend } from "../support/backends.js"
import { actionKey, at, attempt, childAction, listQuery, runView, storedEvent } from "../support/Fixtures.js"

class Refused extends Data.TaggedError("Refused")<{}> {}

/** Rebuilds an attempt from the events it is given: any attempt at all shows that events were there. */
const rebuild: RebuildAttempt = (events) => attempt(events[0]!.attempt)

/** What the RunStore does for retention: finished runs go whole, others stay. */
export const runStoreRetentionContract = (backend: Backend<RunStore>): void => {
  const provided = <A, E>(effect: Effect.Effect<A, E, RunStore>) => Effect.provide(effect, backend.layer)

  it.effect("deleteFinishedRuns deletes the runs that ended before the time, with all they hold, and no other", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const old = runView({ createdAt: at(10), phase: ActionPhase.SUCCEEDED })
      const recent = runView({ createdAt: at(1000), phase: ActionPhase.FAILED })
      const running = runView({ createdAt: at(5), phase: ActionPhase.RUNNING })
      const paused = runView({ createdAt: at(6), phase: ActionPhase.PAUSED })
      for (const view of [old, recent, running, paused]) {
        yield* store.createRun({ view, task: undefined })
        yield* store.recordAction(childAction(view, "t1", { phase: ActionPhase.SUCCEEDED }))
        yield* store.putAttempts(view.root.key, [attempt(1, { phase: view.root.phase })])
        yield* store.recordEvents(
          [storedEvent(actionKey(view, "t1")), storedEvent(actionKey(view, "never-recorded"))],
          rebuild
        )
      }

      expect(yield* store.deleteFinishedRuns({ endedBefore: at(500), limit: 10 })).toEqual({
        _tag: "Deleted",
        runs: [old.run.key]
      })
      expect(Option.isNone(yield* store.getRun(old.run.key))).toBe(true)
      expect(Option.isNone(yield* store.getRunDetails(old.run.key))).toBe(true)
      expect(Option.isNone(yield* store.getAction(actionKey(old, "t1")))).toBe(true)
      expect(yield* store.listAttempts(old.root.key)).toEqual([])
      expect(yield* store.listAttempts(actionKey(old, "t1"))).toEqual([])
      expect((yield* store.listActions(old.run.key, listQuery())).items).toEqual([])
      expect((yield* store.listRuns({ kind: "all" }, listQuery())).items.map((view) => view.run.key.name).sort())
        .toEqual([recent, running, paused].map((view) => view.run.key.name).sort())
      for (const kept of [recent, running, paused]) {
        expect(Option.isSome(yield* store.getAction(actionKey(kept, "t1"))), kept.run.key.name).toBe(true)
        expect(yield* store.listAttempts(actionKey(kept, "t1")), kept.run.key.name).toHaveLength(1)
      }

      // The name is free again, and the old run's events are gone with it: those of an action it never recorded
      // too (recording that action now rebuilds no attempt from them).
      yield* store.createRun({ view: old, task: undefined })
      expect(yield* store.recordAction(childAction(old, "never-recorded"), rebuild)).toBe(true)
      expect(yield* store.listAttempts(actionKey(old, "never-recorded"))).toEqual([])
      expect(yield* store.recordAction(childAction(paused, "never-recorded"), rebuild)).toBe(true)
      expect(yield* store.listAttempts(actionKey(paused, "never-recorded"))).toHaveLength(1)
    })))

  it.effect("deleteFinishedRuns takes those that ended first, at most `limit`, and nothing once none is due", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const views = [3, 1, 2].map((n) => runView({ createdAt: at(n * 10), phase: ActionPhase.ABORTED }))
      for (const view of views) yield* store.createRun({ view, task: undefined })
      const names = (runs: ReadonlyArray<RunKey>) => runs.map((run) => run.name)
      const first = yield* store.deleteFinishedRuns({ endedBefore: at(100), limit: 2 })
      expect(first._tag === "Deleted" && names(first.runs)).toEqual([views[1]!.run.key.name, views[2]!.run.key.name])
      const second = yield* store.deleteFinishedRuns({ endedBefore: at(100), limit: 2 })
      expect(second._tag === "Deleted" && names(second.runs)).toEqual([views[0]!.run.key.name])
      expect(yield* store.deleteFinishedRuns({ endedBefore: at(100), limit: 2 })).toEqual({ _tag: "Deleted", runs: [] })
    })))

  it.effect("every terminal phase counts as finished; the end time is the root's, exclusive", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const finished = [ActionPhase.SUCCEEDED, ActionPhase.FAILED, ActionPhase.ABORTED, ActionPhase.TIMED_OUT].map(
        (phase, i) => runView({ phase, createdAt: at(i), endedAt: at(50 + i) })
      )
      for (const view of finished) yield* store.createRun({ view, task: undefined })
      const outcome = yield* store.deleteFinishedRuns({ endedBefore: at(53), limit: 10 })
      expect(outcome._tag === "Deleted" && outcome.runs.map((run) => run.name)).toEqual(
        finished.slice(0, 3).map((view) => view.run.key.name)
      )
      expect(Option.isSome(yield* store.getRun(finished[3]!.run.key))).toBe(true)
    })))

  it.effect("beforeCommit gets the runs about to go; when it fails nothing is deleted and its error comes back", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const view = runView({ createdAt: at(1), phase: ActionPhase.SUCCEEDED })
      yield* store.createRun({ view, task: undefined })
      const seen: Array<ReadonlyArray<RunKey>> = []
      const refused = yield* Effect.flip(store.deleteFinishedRuns({
        endedBefore: at(100),
        limit: 10,
        beforeCommit: (runs) => Effect.zipRight(Effect.sync(() => seen.push(runs)), Effect.fail(new Refused()))
      }))
      expect(refused).toBeInstanceOf(Refused)
      expect(seen.at(-1)).toEqual([view.run.key])
      expect(Option.isSome(yield* store.getRun(view.run.key))).toBe(true)
      let calls = 0
      yield* store.deleteFinishedRuns({ endedBefore: at(0), limit: 10, beforeCommit: () => Effect.sync(() => calls++) })
      expect(calls).toBe(0)
      expect(yield* store.deleteFinishedRuns({ endedBefore: at(100), limit: 10, beforeCommit: () => Effect.void }))
        .toEqual({ _tag: "Deleted", runs: [view.run.key] })
    })))

  it.effect("recordAction with the run's creation time: another run of that name is ActionMissing", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const view = runView({ createdAt: at(7) })
      yield* store.createRun({ view, task: undefined })
      const missing = yield* Effect.flip(store.recordAction(childAction(view, "t1"), undefined, at(6)))
      expect(missing._tag).toBe("ActionMissing")
      expect(Option.isNone(yield* store.getAction(actionKey(view, "t1")))).toBe(true)
      expect(yield* store.recordAction(childAction(view, "t1"), undefined, at(7))).toBe(true)
    })))

  if (backend.name === "postgres") {
    it.live("one process at a time deletes: another one is Busy meanwhile, and deletes nothing", () =>
      Effect.scoped(Effect.gen(function*() {
        const [one, other] = yield* backend.twins
        const first = Context.get(one, RunStore)
        const second = Context.get(other, RunStore)
        const view = runView({ createdAt: at(1), phase: ActionPhase.SUCCEEDED })
        yield* first.createRun({ view, task: undefined })
        const entered = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const deleting = yield* Effect.fork(first.deleteFinishedRuns({
          endedBefore: at(100),
          limit: 10,
          beforeCommit: () => Effect.zipRight(Deferred.succeed(entered, undefined), Deferred.await(release))
        }))
        yield* Deferred.await(entered)
        expect(yield* second.deleteFinishedRuns({ endedBefore: at(100), limit: 10 })).toEqual({ _tag: "Busy" })
        yield* Deferred.succeed(release, undefined)
        expect(yield* Fiber.join(deleting)).toEqual({ _tag: "Deleted", runs: [view.run.key] })
        expect(yield* second.deleteFinishedRuns({ endedBefore: at(100), limit: 10 })).toEqual({ _tag: "Deleted", runs: [] })
      })))
  }
}
