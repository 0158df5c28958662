import { Effect, Fiber } from "effect"

/** Forks `effect` and waits until it is blocked (on a store that batches: queued behind the batch running) or done. */
export const submit = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(effect)
    yield* Effect.repeat(Fiber.status(fiber), { until: (status) => status._tag !== "Running" })
    return fiber
  })
