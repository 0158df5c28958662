import { describe, expect, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Fiber, Layer, Option, Stream, TestClock } from "effect"
import * as MemoryChangeFeed from "../../../src/adapters/memory/MemoryChangeFeed.js"
import { makeWatchHubs } from "../../../src/adapters/watch/WatchHubs.js"
import type { ActionKey } from "../../../src/domain/Ids.js"
import { latestOnly, latestPerPart, WatchSettings } from "../../../src/domain/WatchRules.js"
import { type Change, ChangeFeed } from "../../../src/ports/ChangeFeed.js"
import { type Part, parts } from "../../support/Parts.js"

const action: ActionKey = { run: { project: "p", domain: "development", name: "r1" }, name: "a0" }
const layer = Layer.merge(MemoryChangeFeed.layer, Layer.succeed(WatchSettings, { bufferSize: 10, maxPending: 10, stallTimeout: Duration.seconds(30) }))

/**
 * A hub over one entity whose state is a number: every read of it is counted; updates wait for `updates`,
 * watchers' first reads for `firsts`.
 */
const entity = (
  whole: boolean,
  updates: Effect.Effect<void> = Effect.void,
  firsts: Effect.Effect<void> = Effect.void,
  key = "entity"
) => {
  let state = 0
  let reads = 0
  const read = Effect.sync(() => {
    reads++
    return [state]
  })
  // Each watcher its own plan (its own pending messages), as `Watches` makes them.
  const plan = Effect.sync(() => ({
    key,
    spec: {
      route: "action/p/development/r1/a0",
      keyOf: (_: Change) => "",
      start: Effect.void,
      update: () => Effect.zipRight(updates, read),
      whole
    },
    first: Effect.zipRight(firsts, read),
    pending: latestOnly<number>()
  }))
  return { plan, reads: () => reads, set: (value: number) => (state = value) }
}

/** A watcher's stream, pulled one message at a time. */
const watcher = (stream: Stream.Stream<number, unknown>) =>
  Effect.map(Stream.toPull(stream), (pull) => Effect.map(Effect.orDie(pull), (chunk) => Option.getOrThrow(Chunk.head(chunk))))

describe("WatchHub", () => {
  it.scopedLive("watchers that join while nothing changed share the hub's latest read, and still get every change", () =>
    Effect.gen(function*() {
      const { watch } = yield* makeWatchHubs
      const feed = yield* ChangeFeed
      const subject = entity(true)
      const one = yield* watcher(watch(subject.plan))
      expect(yield* one).toBe(0)
      const two = yield* watcher(watch(subject.plan))
      expect(yield* two).toBe(0)
      expect(subject.reads()).toBe(1)

      subject.set(1)
      yield* feed.publish([{ action, kind: "updated" }])
      expect([yield* one, yield* two]).toEqual([1, 1])
      expect(subject.reads()).toBe(2)
      // The update read is current too: a third watcher starts from it.
      const three = yield* watcher(watch(subject.plan))
      expect(yield* three).toBe(1)
      expect(subject.reads()).toBe(2)

      subject.set(2)
      yield* feed.publish([{ action, kind: "updated" }])
      expect([yield* one, yield* two, yield* three]).toEqual([2, 2, 2])
    }).pipe(Effect.provide(layer)))

  it.scopedLive("a change heard since the latest read makes the next watcher read for itself", () =>
    Effect.gen(function*() {
      const { watch } = yield* makeWatchHubs
      const feed = yield* ChangeFeed
      const latch = yield* Effect.makeLatch(false)
      const subject = entity(true, latch.await)
      const one = yield* watcher(watch(subject.plan))
      expect(yield* one).toBe(0)
      subject.set(1)
      yield* feed.publish([{ action, kind: "updated" }])
      // The hub heard the change; its read waits. A watcher joining now must not start from the old state.
      yield* Effect.sleep("20 millis")
      const two = yield* watcher(watch(subject.plan))
      expect(yield* two).toBe(1)
      expect(subject.reads()).toBe(2)
      yield* latch.open
      expect(yield* one).toBe(1)
      // The hub's read started before the second watcher's own: it is not sent to it again; later ones are.
      subject.set(2)
      yield* feed.publish([{ action, kind: "updated" }])
      expect([yield* one, yield* two]).toEqual([2, 2])
    }).pipe(Effect.provide(layer)))

  it.scopedLive("watchers that join while another's first read runs wait for it, unless a change comes first", () =>
    Effect.gen(function*() {
      const { watch } = yield* makeWatchHubs
      const feed = yield* ChangeFeed
      // Opening a stream runs its first read: each opens in a fiber of its own while the reads wait.
      const opened = (plan: ReturnType<typeof entity>["plan"]) => Effect.fork(Effect.flatMap(watcher(watch(plan)), (pull) => pull))
      const firsts = yield* Effect.makeLatch(false)
      const subject = entity(true, Effect.void, firsts.await)
      const one = yield* opened(subject.plan)
      yield* Effect.sleep("20 millis")
      const two = yield* opened(subject.plan)
      yield* Effect.sleep("20 millis")
      yield* firsts.open
      expect([yield* Fiber.join(one), yield* Fiber.join(two)]).toEqual([0, 0])
      expect(subject.reads()).toBe(1)

      const later = yield* Effect.makeLatch(false)
      const other = entity(true, Effect.void, later.await, "other")
      const three = yield* opened(other.plan)
      yield* Effect.sleep("20 millis")
      const four = yield* opened(other.plan)
      yield* Effect.sleep("20 millis")
      other.set(1)
      yield* feed.publish([{ action, kind: "updated" }])
      yield* Effect.sleep("20 millis")
      yield* later.open
      // The fourth watcher's wait ended with a change heard: it read for itself (reads: the third's, the hub's
      // update, its own), and starts from the new state.
      expect(yield* Fiber.join(four)).toBe(1)
      expect(other.reads()).toBe(3)
      expect(yield* Fiber.join(three)).toBe(1)
    }).pipe(Effect.provide(layer)))

  it.scopedLive("a watcher waiting for another's first read reads for itself when that one is cancelled", () =>
    Effect.gen(function*() {
      const { watch } = yield* makeWatchHubs
      const firsts = yield* Effect.makeLatch(false)
      const subject = entity(true, Effect.void, firsts.await)
      const one = yield* Effect.fork(Effect.flatMap(watcher(watch(subject.plan)), (pull) => pull))
      yield* Effect.sleep("20 millis")
      const two = yield* Effect.fork(Effect.flatMap(watcher(watch(subject.plan)), (pull) => pull))
      yield* Effect.sleep("20 millis")
      yield* Fiber.interrupt(one)
      yield* firsts.open
      expect(yield* Fiber.join(two)).toBe(0)
      expect(subject.reads()).toBe(1)
    }).pipe(Effect.provide(layer)))

  it.scopedLive("without `whole`, every watcher reads its own first state", () =>
    Effect.gen(function*() {
      const { watch } = yield* makeWatchHubs
      const subject = entity(false)
      const one = yield* watcher(watch(subject.plan))
      const two = yield* watcher(watch(subject.plan))
      expect([yield* one, yield* two]).toEqual([0, 0])
      expect(subject.reads()).toBe(2)
    }).pipe(Effect.provide(layer)))
})

describe("WatchHub stalls", () => {
  const stallTimeout = Duration.seconds(30)
  const stallLayer = Layer.merge(MemoryChangeFeed.layer, Layer.succeed(WatchSettings, { bufferSize: 1, maxPending: 1000, stallTimeout }))

  /** A tree-like hub: every change makes one message of parts; a watcher's pending merges them. */
  const treePlan = (pending: ReturnType<typeof latestPerPart<Part>>) => {
    let state = 0
    return Effect.succeed({
      key: "tree",
      spec: {
        route: "run/p/development/r1",
        keyOf: (change: Change) => change.action.name,
        start: Effect.void,
        update: (changes: ReadonlyArray<Change>) =>
          Effect.sync(() => [changes.map((change) => ({ name: change.action.name, state: ++state }))]),
        snapshot: () => [parts(["a0", 0])]
      },
      pending
    })
  }
  const pull = (stream: Stream.Stream<ReadonlyArray<Part>, unknown>) => Stream.toPull(stream)
  const change = (name: string): Change => ({ action: { ...action, name }, kind: "updated" })

  it.scoped("a watcher whose client takes nothing for the stall timeout is ended and lets go of what it held; one that reads is not", () =>
    Effect.gen(function*() {
      const { watch } = yield* makeWatchHubs
      const feed = yield* ChangeFeed
      const stalledPending = latestPerPart<Part>((part) => part.name, { hold: 1, limit: 1000, max: 1000 })
      const stalled = yield* pull(watch(treePlan(stalledPending)))
      const reading = yield* pull(watch(treePlan(latestPerPart<Part>((part) => part.name, { hold: 1, limit: 1000, max: 1000 }))))
      expect(Chunk.toReadonlyArray(yield* stalled)).toEqual([parts(["a0", 0])])
      expect(Chunk.toReadonlyArray(yield* reading)).toEqual([parts(["a0", 0])])

      for (const name of ["t1", "t2", "t3"]) {
        yield* feed.publish([change(name)])
        // Delivered to both watchers at once: when the reading one has it, so has the stalled one.
        expect(Chunk.toReadonlyArray(yield* reading).flat().map((part) => part.name)).toEqual([name])
      }
      expect(stalledPending.isEmpty()).toBe(false)
      yield* TestClock.adjust(Duration.sum(stallTimeout, Duration.seconds(1)))
      expect(stalledPending.isEmpty()).toBe(true)
      const failure = yield* Effect.flip(stalled)
      expect(Option.map(failure, (error) => (error as { _tag: string })._tag)).toEqual(Option.some("ResourceExhausted"))

      // The watcher that kept reading goes on.
      yield* feed.publish([change("t4")])
      expect(Chunk.toReadonlyArray(yield* reading).flat().map((part) => part.name)).toEqual(["t4"])
    }).pipe(Effect.provide(stallLayer)))

  it.scoped("a watcher that is behind but reads is never ended, however long the burst", () =>
    Effect.gen(function*() {
      const { watch } = yield* makeWatchHubs
      const feed = yield* ChangeFeed
      const slow = yield* pull(watch(treePlan(latestPerPart<Part>((part) => part.name, { hold: 1, limit: 1000, max: 1000 }))))
      const fast = yield* pull(watch(treePlan(latestPerPart<Part>((part) => part.name, { hold: 1, limit: 1000, max: 1000 }))))
      yield* slow
      yield* fast
      const latest = new Map<string, number>()
      for (let i = 0; i < 5000; i++) {
        yield* feed.publish([change(`t${i % 500}`)])
        yield* fast
        // The slow one takes a message every 100 changes, 20 s apart: slow, but within the stall timeout.
        if (i % 100 === 99) {
          yield* TestClock.adjust(Duration.seconds(20))
          for (const part of Chunk.toReadonlyArray(yield* slow).flat()) latest.set(part.name, part.state)
        }
      }
      // Each action once per merge, at its newest state: all 500, each at the state of its last change.
      expect(latest.size).toBe(500)
      expect(Math.max(...latest.values())).toBe(5000)
    }).pipe(Effect.provide(stallLayer)))
})
