import { Cause, Duration, Effect, Layer, Ref, Schedule } from "effect"
import { DatabaseHealth } from "../ports/DatabaseHealth.js"
import { NotReady, Readiness } from "../ports/Readiness.js"

/**
 * Readiness from the migration state and the database's answer. Migrations run in the background and are
 * retried (with backoff) until the database accepts them, so the service starts while its database is down
 * and becomes ready when it comes up.
 */
export const layerReadiness = <E, R>(migrate: Effect.Effect<unknown, E, R>) =>
  Layer.scoped(
    Readiness,
    Effect.gen(function*() {
      const health = yield* DatabaseHealth
      const state = yield* Ref.make<string | undefined>("database migrations have not run yet")
      const retry = Schedule.exponential(Duration.millis(250)).pipe(Schedule.either(Schedule.spaced(Duration.seconds(5))))
      yield* migrate.pipe(
        Effect.tapErrorCause((cause) =>
          Effect.zipRight(
            Ref.set(state, "database migrations failed; retrying"),
            Effect.logWarning("database migrations failed; retrying").pipe(Effect.annotateLogs("cause", Cause.pretty(cause)))
          )
        ),
        Effect.retry(retry),
        Effect.zipRight(Ref.set(state, undefined)),
        Effect.zipRight(Effect.logInfo("database migrations applied")),
        Effect.forkScoped
      )
      const migrated = Effect.flatMap(Ref.get(state), (reason) =>
        reason === undefined ? Effect.void : Effect.fail(new NotReady({ reason }))
      )
      const check = Effect.zipRight(
        migrated,
        Effect.mapError(health.check, (unavailable) => new NotReady({ reason: unavailable.reason }))
      )
      return { migrated, check }
    })
  )
