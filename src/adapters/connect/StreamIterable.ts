import { Cause, Chunk, Effect, Exit, type Fiber, FiberId, Option, Runtime, Scope, Stream, type Tracer } from "effect"
import { PullGate, type TakeReady, type WhenReady } from "../../ports/PullGate.js"

/** Streams that end when the server shuts down: each registers how to stop it, and leaves when it ends. */
export interface StopRegistry {
  readonly add: (stop: () => void) => void
  readonly delete: (stop: () => void) => void
}

const end = Symbol("end")
const interrupted = Exit.interrupt(FiberId.none)

/**
 * What a streaming handler returns to Connect: the stream is pulled when Connect asks for the next element
 * (Connect asks once it has written the previous one, so a client that reads slowly holds the stream back),
 * with no fiber of its own between pulls. With `pullGate`, the stream is given a `PullGate`: when its one source
 * registered and says a pull would wait, the iterator waits for that source's promise before pulling, so an open
 * stream that waits for its next change holds a promise, not a parked pull (whose fiber and stream stages would
 * outlive V8's young generation and fill the old one), and a message the source has ready is taken from it
 * without a pull when it offers `take`. Only for a stream whose every message comes from that source, one for
 * one: a stage that ends the stream or emits on its own would not be pulled while the source waits (nor would a
 * stage that changes messages see the taken ones). `open` builds the stream (its first pull runs it); `failed`
 * maps and logs a failure, and what it fails with rejects the pending `next()`. The request's signal
 * (connect-node aborts it on a client cancel and never calls the iterator's `return()`) or `return()` interrupts
 * the pull and closes the stream's scope; at shutdown the pending `next()` rejects with `stopped()`. With `span`,
 * the opening, every pull and the mapping of a failure run below it (pulls run on fibers of their own, which would
 * otherwise start from the runtime's context, with no span).
 */
export const streamIterable = <A, E, R, O = A>(options: {
  readonly runtime: Runtime.Runtime<R>
  readonly open: Effect.Effect<Stream.Stream<A, E, R>, E, R>
  /** Each element as the message it goes out as, when Connect takes it (no stream stage per open stream). */
  readonly each?: (element: A) => O
  readonly failed: (cause: Cause.Cause<E>) => Effect.Effect<never, unknown>
  readonly signal: AbortSignal
  readonly stops: StopRegistry
  readonly stopped: () => Effect.Effect<never, unknown>
  readonly pullGate?: boolean
  readonly span?: Tracer.AnySpan
}): AsyncIterable<O> => ({
  [Symbol.asyncIterator]: () => {
    const { runtime, signal, span, stops } = options
    const below = <A, E>(effect: Effect.Effect<A, E, R>) => (span === undefined ? effect : Effect.withParentSpan(effect, span))
    const runFork = Runtime.runFork(runtime)
    let scope: Scope.CloseableScope | undefined
    let pull: Effect.Effect<Chunk.Chunk<A> | typeof end, unknown, R> | undefined
    const drained: ReadonlyArray<A> = []
    let buffered = drained
    let index = 0
    const each = options.each ?? ((element: A) => element as unknown as O)
    // A pull in flight, or a wait outside the stream for its source (see PullGate).
    let running: Fiber.RuntimeFiber<Chunk.Chunk<A> | typeof end, unknown> | undefined
    let gated = false
    let finished = false
    // The pending `next()`, settled by a pull's exit, a finish or a stop.
    let resolveNext: ((result: IteratorResult<O> | Promise<IteratorResult<O>>) => void) | undefined
    let rejectNext: ((error: unknown) => void) | undefined
    // Each source's way to say whether a pull would wait, and to hand over a ready message if it can.
    const sources = new Map<WhenReady, TakeReady | undefined>()
    const gate = PullGate.of({
      register: (whenReady, take) => {
        sources.set(whenReady, take)
        return () => sources.delete(whenReady)
      }
    })

    const finish = () => {
      if (finished) return
      finished = true
      signal.removeEventListener("abort", cancel)
      stops.delete(stop)
      gated = false
      const fiber = running
      running = undefined
      fiber?.unsafeInterruptAsFork(FiberId.none)
      settle(interrupted)
      const open = scope
      scope = undefined
      if (open !== undefined) runFork(Scope.close(open, Exit.void))
    }
    const cancel = () => finish()
    const settle = (exit: Exit.Exit<Chunk.Chunk<A> | typeof end, unknown>): void => {
      const resolve = resolveNext
      const reject = rejectNext
      resolveNext = undefined
      rejectNext = undefined
      if (resolve === undefined || reject === undefined) return
      if (Exit.isSuccess(exit)) {
        if (exit.value === end) {
          finish()
          return resolve({ done: true, value: undefined })
        }
        buffered = Chunk.toReadonlyArray(exit.value)
        index = 0
        return resolve(next())
      }
      finish()
      if (Cause.isInterruptedOnly(exit.cause)) resolve({ done: true, value: undefined })
      else reject(Cause.squash(exit.cause))
    }
    // At shutdown the pending `next()`, or else the next one, fails with the shutdown's failure (mapped and
    // logged like any other): an unfinished stream never ends cleanly then.
    let stoppedWith: Promise<IteratorResult<O>> | undefined
    const stop = () => {
      const resolve = resolveNext
      const reject = rejectNext
      resolveNext = undefined
      rejectNext = undefined
      finish()
      const failing = runFork(below(options.stopped()))
      if (resolve !== undefined && reject !== undefined) {
        return failing.addObserver((exit) => {
          resolveNext = resolve
          rejectNext = reject
          settle(exit)
        })
      }
      stoppedWith = new Promise((_, reject) =>
        failing.addObserver((exit) => reject(Exit.isFailure(exit) ? Cause.squash(exit.cause) : new Error("stopped")))
      )
      stoppedWith.catch(() => undefined)
    }

    const mapFailure = <A>(effect: Effect.Effect<A, E, R>) =>
      Effect.catchAllCause(effect, (cause) => (Cause.isInterruptedOnly(cause) ? Effect.failCause(cause) : options.failed(cause)))
    // The first pull opens the stream in a scope of its own; each pull is an element chunk or the end.
    const opening = Effect.flatMap(Scope.make(), (created) => {
      scope = created
      return mapFailure(Effect.flatMap(options.open, (stream) => Scope.extend(Stream.toPull(stream), created)))
    })
    const read = (toPull: Effect.Effect<Chunk.Chunk<A>, Option.Option<E>, R>) =>
      mapFailure(Effect.catchAll(toPull, (failure) => (Option.isNone(failure) ? Effect.succeed(end) : Effect.fail(failure.value))))
    // The gate is given to the pull that opens the stream (its source registers then), not as a stream stage
    // (one more executor per stream) nor to every pull (a copy of the runtime's context each). The span is given to
    // every pull, that copy included: a cost of traced streams only.
    const open = Effect.flatMap(opening, (toPull) => (pull = below(read(toPull))))
    const opened = below(options.pullGate === true ? Effect.provideService(open, PullGate, gate) : open)

    // One function each per stream, none per message: an open stream waits about as long as its messages are
    // apart, so whatever a wait allocates outlives V8's young generation.
    const pulled = (exit: Exit.Exit<Chunk.Chunk<A> | typeof end, unknown>) => {
      // A pull that a finish interrupted has nothing left to settle.
      if (running === undefined) return
      running = undefined
      settle(exit)
    }
    const start = () => {
      running = runFork(pull ?? opened)
      running.addObserver(pulled)
    }
    const ready = () => {
      if (!gated) return
      gated = false
      const element = taken()
      if (element === undefined) return start()
      const resolve = resolveNext
      resolveNext = undefined
      rejectNext = undefined
      resolve?.(emit(element))
    }
    // With more than one source, one of them may have something while another would wait: no gating then.
    const waits = (): boolean => {
      if (pull === undefined || sources.size !== 1) return false
      for (const whenReady of sources.keys()) return whenReady(ready)
      return false
    }
    // The one source's ready message, taken without a pull: a stream whose every message is that source's
    // (the gate's condition) gives it next anyway, and a watcher that is behind then costs no fiber a message.
    const taken = (): A | undefined => {
      if (pull === undefined || sources.size !== 1) return undefined
      for (const take of sources.values()) return take?.() as A | undefined
      return undefined
    }

    // A message that cannot be made ends the stream as a defect, mapped and logged like any other failure.
    const failed = (error: unknown): Promise<IteratorResult<O>> => {
      finish()
      return new Promise((_, reject) =>
        runFork(below(options.failed(Cause.die(error)))).addObserver((exit) =>
          reject(Exit.isFailure(exit) ? Cause.squash(exit.cause) : error)
        )
      )
    }

    const emit = (element: A): Promise<IteratorResult<O>> => {
      try {
        return Promise.resolve({ done: false, value: each(element) })
      } catch (error) {
        return failed(error)
      }
    }

    const next = (): Promise<IteratorResult<O>> => {
      if (index < buffered.length) {
        const element = buffered[index++]!
        // Not kept while the stream waits for its next message (a watch's last message can be large).
        if (index === buffered.length) buffered = drained
        return emit(element)
      }
      if (finished) return stoppedWith ?? Promise.resolve({ done: true, value: undefined })
      const element = taken()
      if (element !== undefined) return emit(element)
      if (pull === undefined && running === undefined) {
        if (signal.aborted) {
          finish()
          return Promise.resolve({ done: true, value: undefined })
        }
        signal.addEventListener("abort", cancel, { once: true })
        stops.add(stop)
      }
      return new Promise<IteratorResult<O>>((resolve, reject) => {
        resolveNext = resolve
        rejectNext = reject
        if (waits()) gated = true
        else start()
      })
    }

    return {
      next,
      return: () => {
        finish()
        return Promise.resolve({ done: true as const, value: undefined })
      }
    }
  }
})
