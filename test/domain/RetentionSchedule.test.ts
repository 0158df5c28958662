import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Layer, Queue, Ref, Stream, TestClock } from "effect"
import * as FileBlobStore from "../../src/adapters/blob/FileBlobStore.js"
import * as MemoryChangeFeed from "../../src/adapters/memory/MemoryChangeFeed.js"
import * as MemoryRunStore from "../../src/adapters/memory/MemoryRunStore.js"
import { ActionPhase } from "../../src/domain/Phase.js"
import * as RetentionLive from "../../src/domain/Retention.js"
import { Retention, type RetentionPass, RetentionSettings } from "../../src/domain/Retention.js"
import { RunsSettings } from "../../src/domain/RunsSettings.js"
import { NotReady, Readiness } from "../../src/ports/Readiness.js"
import { RunStore } from "../../src/ports/RunStore.js"
import { runView } from "../support/Fixtures.js"
import { tempStoragePrefix } from "../support/TestApp.js"

const interval = Duration.minutes(30)

/** Retention over the memory store, its passes as they end, and whether the schema counts as migrated. */
const setup = (maxAge: Duration.Duration | undefined) =>
  Effect.gen(function*() {
    const storagePrefix = yield* tempStoragePrefix
    const migrated = yield* Ref.make(false)
    const readiness = Layer.succeed(Readiness, {
      migrated: Effect.flatMap(Ref.get(migrated), (done) =>
        done ? Effect.void : Effect.fail(new NotReady({ reason: "not migrated yet" }))),
      check: Effect.void
    })
    const services = yield* Layer.build(
      RetentionLive.layer.pipe(
        Layer.provideMerge(Layer.mergeAll(
          MemoryRunStore.layer,
          MemoryChangeFeed.layer,
          FileBlobStore.layer({ storagePrefix }),
          Layer.succeed(RunsSettings, { storagePrefix }),
          Layer.succeed(RetentionSettings, { maxAge, interval, batchSize: 100 }),
          readiness
        ))
      )
    )
    const retention = yield* Effect.provide(Retention, services)
    const passes = yield* Queue.unbounded<RetentionPass>()
    yield* Effect.forkScoped(Stream.runForEach(yield* retention.passes, (pass) => Queue.offer(passes, pass)))
    const start = Layer.build(RetentionLive.layerSchedule).pipe(Effect.provide(services))
    return { migrated, passes, start, store: yield* Effect.provide(RunStore, services) }
  })

/** Lets the fibers woken by the clock run; a pass on memory finishes within these steps. */
const settle = Effect.repeatN(Effect.yieldNow(), 50)

describe("Retention schedule", () => {
  it.scoped("waits for the migrations, then passes at once and every interval, deleting runs as they come due", () =>
    Effect.gen(function*() {
      const { migrated, passes, start, store } = yield* setup(Duration.hours(1))
      yield* start

      yield* TestClock.adjust(Duration.seconds(5))
      yield* settle
      expect(yield* Queue.size(passes)).toBe(0)

      yield* Ref.set(migrated, true)
      yield* TestClock.adjust(Duration.seconds(1))
      const first = yield* Queue.take(passes)
      // Only this fiber moves the test clock, and it stood still while the pass ran; yet loaded runs have seen the
      // pass at another time than the 6 s of a quiet one, so what follows is timed from the clock read here.
      const firstAt = yield* Clock.currentTimeMillis
      expect(first).toEqual({ endedBefore: new Date(firstAt - Duration.toMillis(Duration.hours(1))), deleted: 0, busy: false })

      // A run that finished just before the first pass is due an hour later: not at the next pass, at the one after.
      const finished = runView({ createdAt: new Date(0), phase: ActionPhase.SUCCEEDED, endedAt: new Date(firstAt - 1) })
      yield* store.createRun({ view: finished, task: undefined })

      yield* TestClock.adjust(Duration.subtract(interval, Duration.millis(1)))
      yield* settle
      expect(yield* Queue.size(passes)).toBe(0)
      yield* TestClock.adjust(Duration.millis(1))
      expect(yield* Queue.take(passes)).toMatchObject({ deleted: 0 })
      expect((yield* store.getRun(finished.run.key))._tag).toBe("Some")

      yield* TestClock.adjust(interval)
      const due = yield* Queue.take(passes)
      expect(due).toEqual({ endedBefore: new Date(firstAt), deleted: 1, busy: false })
      expect((yield* store.getRun(finished.run.key))._tag).toBe("None")
    }))

  it.scoped("does nothing when runs.retention.maxAge is not set", () =>
    Effect.gen(function*() {
      const { migrated, passes, start, store } = yield* setup(undefined)
      yield* Ref.set(migrated, true)
      const finished = runView({ createdAt: new Date(0), phase: ActionPhase.SUCCEEDED, endedAt: new Date(0) })
      yield* store.createRun({ view: finished, task: undefined })
      yield* start
      yield* TestClock.adjust(Duration.hours(3))
      yield* settle
      expect(yield* Queue.size(passes)).toBe(0)
      expect((yield* store.getRun(finished.run.key))._tag).toBe("Some")
    }))
})
