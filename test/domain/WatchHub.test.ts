import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Layer, Option, Stream } from "effect"
import * as MemoryChangeFeed from "../../src/adapters/memory/MemoryChangeFeed.js"
import type { ActionKey } from "../../src/domain/Ids.js"
import { WatchSettings } from "../../src/domain/WatchBuffer.js"
import { latestOnly, makeWatchHubs } from "../../src/domain/WatchHub.js"
import { type Change, ChangeFeed } from "../../src/ports/ChangeFeed.js"

const action: ActionKey = { run: { project: "p", domain: "development", name: "r1" }, name: "a0" }
const layer = Layer.merge(MemoryChangeFeed.layer, Layer.succeed(WatchSettings, { bufferSize: 10 }))

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
