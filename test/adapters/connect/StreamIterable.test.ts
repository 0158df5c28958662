import { describe, expect, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Option, Stream } from "effect"
import { streamIterable } from "../../../src/adapters/connect/StreamIterable.js"
import { PullGate } from "../../../src/ports/PullGate.js"

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

  it.live("an element that cannot be made a message fails the stream through `failed` and closes its scope", () =>
    Effect.gen(function*() {
      const stops = new Set<() => void>()
      const released = yield* Deferred.make<void>()
      const runtime = yield* Effect.runtime<never>()
      const iterator = streamIterable({
        runtime,
        open: Effect.succeed(Stream.concat(Stream.make("ok", "bad"), Stream.never).pipe(Stream.ensuring(Deferred.succeed(released, undefined)))),
        each: (element: string) => {
          if (element === "bad") throw new Error("cannot build")
          return element.toUpperCase()
        },
        failed: (cause) => Effect.fail(new Error(`mapped: ${Cause.pretty(cause)}`)),
        signal: new AbortController().signal,
        stops,
        stopped: () => Effect.fail(new Error("shutting down"))
      })[Symbol.asyncIterator]()
      expect(yield* Effect.promise(() => iterator.next())).toEqual({ done: false, value: "OK" })
      const failure = yield* Effect.promise(() => iterator.next().then(() => undefined, (error: unknown) => error))
      expect(String(failure)).toContain("mapped")
      expect(String(failure)).toContain("cannot build")
      yield* Deferred.await(released).pipe(Effect.timeout("5 seconds"))
      expect(stops.size).toBe(0)
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

/**
 * A source that registers with the PullGate (when given one) and counts its pulls: `push` adds an element,
 * a pull with nothing there waits inside the stream.
 */
const gatedSource = (registrations = 1, offersTake = false) => {
  const items: Array<string> = []
  let pulls = 0
  let wake: (() => void) | undefined
  let onReady: (() => void) | undefined
  const push = (item: string) => {
    items.push(item)
    wake?.()
    const ready = onReady
    onReady = undefined
    ready?.()
  }
  const whenReady = (ready: () => void) => {
    if (items.length > 0) return false
    onReady = ready
    return true
  }
  const take: Effect.Effect<string> = Effect.suspend(() => {
    const item = items.shift()
    if (item !== undefined) return Effect.succeed(item)
    return Effect.flatMap(Effect.async<void>((resume) => {
      wake = () => {
        wake = undefined
        resume(Effect.void)
      }
    }), () => take)
  })
  const stream = Stream.unwrapScoped(Effect.gen(function*() {
    const gate = yield* Effect.serviceOption(PullGate)
    if (Option.isSome(gate)) {
      for (let i = 0; i < registrations; i++) {
        const unregister = gate.value.register((ready) => whenReady(ready), offersTake ? () => items.shift() : undefined)
        yield* Effect.addFinalizer(() => Effect.sync(unregister))
      }
    }
    return Stream.repeatEffect(Effect.zipRight(Effect.sync(() => pulls++), take))
  }))
  return { stream, push, pulls: () => pulls }
}

const gatedIterable = (stream: Stream.Stream<string>, stops: Set<() => void>, signal = new AbortController().signal) =>
  Effect.map(Effect.runtime<never>(), (runtime) =>
    streamIterable({
      runtime,
      open: Effect.succeed(stream),
      failed: (cause) => Effect.failCause(cause),
      signal,
      stops,
      stopped: () => Effect.fail(new Error("shutting down")),
      pullGate: true
    })[Symbol.asyncIterator]())

const settledSoon = <A>(promise: Promise<A>) =>
  Promise.race([promise.then(() => true, () => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 50))])

describe("streamIterable with a pull gate", () => {
  it.live("waits outside the stream while its source would wait, and pulls once the source has something", () =>
    Effect.gen(function*() {
      const source = gatedSource()
      const iterator = yield* gatedIterable(source.stream, new Set())
      source.push("a")
      expect(yield* Effect.promise(() => iterator.next())).toEqual({ done: false, value: "a" })
      const pullsBefore = source.pulls()
      const next = iterator.next()
      expect(yield* Effect.promise(() => settledSoon(next))).toBe(false)
      expect(source.pulls()).toBe(pullsBefore)
      source.push("b")
      expect(yield* Effect.promise(() => next)).toEqual({ done: false, value: "b" })
      expect(source.pulls()).toBe(pullsBefore + 1)
    }))

  it.live("takes what a source that offers `take` has ready without a pull, also once it has waited outside", () =>
    Effect.gen(function*() {
      const source = gatedSource(1, true)
      const iterator = yield* gatedIterable(source.stream, new Set())
      source.push("a")
      expect(yield* Effect.promise(() => iterator.next())).toEqual({ done: false, value: "a" })
      const pullsBefore = source.pulls()
      source.push("b")
      source.push("c")
      expect(yield* Effect.promise(() => iterator.next())).toEqual({ done: false, value: "b" })
      expect(yield* Effect.promise(() => iterator.next())).toEqual({ done: false, value: "c" })
      expect(source.pulls()).toBe(pullsBefore)
      const next = iterator.next()
      expect(yield* Effect.promise(() => settledSoon(next))).toBe(false)
      source.push("d")
      expect(yield* Effect.promise(() => next)).toEqual({ done: false, value: "d" })
      expect(source.pulls()).toBe(pullsBefore)
    }))

  it.live("with two sources registered, pulls at once (one may have something while the other waits)", () =>
    Effect.gen(function*() {
      const source = gatedSource(2)
      const iterator = yield* gatedIterable(source.stream, new Set())
      source.push("a")
      yield* Effect.promise(() => iterator.next())
      const pullsBefore = source.pulls()
      const next = iterator.next()
      yield* Effect.promise(() => settledSoon(next))
      expect(source.pulls()).toBe(pullsBefore + 1)
      source.push("b")
      expect(yield* Effect.promise(() => next)).toEqual({ done: false, value: "b" })
    }))

  it.live("a client cancel or a shutdown during the wait ends the pending next() as it would a pull", () =>
    Effect.gen(function*() {
      for (const ending of ["cancel", "shutdown"] as const) {
        const source = gatedSource()
        const stops = new Set<() => void>()
        const abort = new AbortController()
        const iterator = yield* gatedIterable(source.stream, stops, abort.signal)
        source.push("a")
        yield* Effect.promise(() => iterator.next())
        const next = iterator.next().then((result) => result, (error: unknown) => String(error))
        expect(yield* Effect.promise(() => settledSoon(next))).toBe(false)
        if (ending === "cancel") abort.abort()
        else for (const stop of Array.from(stops)) stop()
        const outcome = yield* Effect.promise(() => next)
        if (ending === "cancel") expect(outcome).toEqual({ done: true, value: undefined })
        else expect(String(outcome)).toContain("shutting down")
        expect(stops.size).toBe(0)
        // The source's promise settling later starts nothing.
        const pulls = source.pulls()
        source.push("late")
        yield* Effect.sleep("20 millis")
        expect(source.pulls()).toBe(pulls)
      }
    }))
})
