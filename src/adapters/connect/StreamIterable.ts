import { Cause, Effect, Exit, type Fiber, FiberId, Runtime } from "effect"

/**
 * What a streaming handler returns to Connect: `run` (one fiber) produces the elements through `handOff`, which
 * completes once Connect has taken the element, so a client that reads slowly holds the producer back. The
 * fiber is interrupted when the request's signal aborts (connect-node aborts it on a client cancel and never
 * calls the iterator's `return()`) or the iterator is returned; a failure rejects the pending `next()`.
 * (`Stream.toAsyncIterableRuntime` with `Stream.interruptWhen` does the same with two stream merges per
 * element; this costs one hand-off.)
 */
export const streamIterable = <O, E, R>(
  runtime: Runtime.Runtime<R>,
  run: (handOff: (value: O) => Effect.Effect<void>) => Effect.Effect<void, E, R>,
  signal: AbortSignal
): AsyncIterable<O> => ({
  [Symbol.asyncIterator]: () => {
    let fiber: Fiber.RuntimeFiber<Exit.Exit<void, E>> | undefined
    let consumer: { readonly resolve: (result: IteratorResult<O>) => void; readonly reject: (error: unknown) => void } | undefined
    let offered: { readonly value: O; readonly taken: () => void } | undefined
    let ended: Exit.Exit<void, E> | undefined

    const settle = () => {
      const waiting = consumer
      if (waiting === undefined) return
      if (offered !== undefined) {
        const { taken, value } = offered
        consumer = offered = undefined
        waiting.resolve({ done: false, value })
        taken()
      } else if (ended !== undefined) {
        consumer = undefined
        if (Exit.isSuccess(ended)) waiting.resolve({ done: true, value: undefined })
        else waiting.reject(Cause.squash(ended.cause))
      }
    }
    const handOff = (value: O) =>
      Effect.async<void>((resume) => {
        offered = { value, taken: () => resume(Effect.void) }
        settle()
      })
    const interrupt = () => fiber?.unsafeInterruptAsFork(FiberId.none)
    const start = () => {
      // The failure is the consumer's to see (the runtime would also log it as unhandled).
      const running = Runtime.runFork(runtime)(Effect.exit(run(handOff)))
      fiber = running
      signal.addEventListener("abort", interrupt, { once: true })
      running.addObserver((exit) => {
        signal.removeEventListener("abort", interrupt)
        ended = Exit.isSuccess(exit) ? exit.value : exit
        offered = undefined
        settle()
      })
    }
    return {
      next: () =>
        new Promise<IteratorResult<O>>((resolve, reject) => {
          consumer = { resolve, reject }
          if (fiber === undefined) start()
          else settle()
        }),
      return: () => {
        interrupt()
        return Promise.resolve({ done: true as const, value: undefined })
      }
    }
  }
})
