import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Stream } from "effect"
import { streamIterable } from "../../../src/adapters/connect/StreamIterable.js"

/** One element, then nothing until the stream is stopped; `released` completes when its scope closes. */
const iterable = (stops: Set<() => void>, released: Deferred.Deferred<void>, signal = new AbortController().signal) =>
  Effect.map(Effect.runtime<never>(), (runtime) =>
    streamIterable({
      runtime,
      open: Effect.succeed(Stream.concat(Stream.make("first"), Stream.never).pipe(Stream.ensuring(Deferred.succeed(released, undefined)))),
      failed: (cause) => Effect.failCause(cause),
      signal,
      stops,
      stopped: () => Effect.fail(new Error("shutting down"))
    })[Symbol.asyncIterator]())

describe("streamIterable", () => {
  it.live("at shutdown a pending next() fails, and so does the next one when none was pending", () =>
    Effect.gen(function*() {
      for (const pending of [true, false]) {
        const stops = new Set<() => void>()
        const released = yield* Deferred.make<void>()
        const iterator = yield* iterable(stops, released)
        expect(yield* Effect.promise(() => iterator.next())).toEqual({ done: false, value: "first" })
        const next = pending ? iterator.next() : undefined
        expect(stops.size).toBe(1)
        for (const stop of Array.from(stops)) stop()
        const failure = yield* Effect.promise(() => (next ?? iterator.next()).then(() => undefined, (error: unknown) => error))
        expect(String(failure)).toContain("shutting down")
        yield* Deferred.await(released).pipe(Effect.timeout("5 seconds"))
        expect(stops.size).toBe(0)
      }
    }))

  it.live("a client cancel closes the stream's scope and ends the iterator", () =>
    Effect.gen(function*() {
      const stops = new Set<() => void>()
      const released = yield* Deferred.make<void>()
      const abort = new AbortController()
      const iterator = yield* iterable(stops, released, abort.signal)
      yield* Effect.promise(() => iterator.next())
      const next = iterator.next()
      abort.abort()
      expect(yield* Effect.promise(() => next)).toEqual({ done: true, value: undefined })
      yield* Deferred.await(released).pipe(Effect.timeout("5 seconds"))
      expect(stops.size).toBe(0)
    }))
})
