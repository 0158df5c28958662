import { Duration, Effect, Schedule } from "effect"
import type pg from "pg"

export interface IdleTrimOptions {
  /** Connections kept open however long they are idle (`database.maxIdleConnections`). */
  readonly keep: number
  /** How long the pool must have had a connection to spare before one is closed. */
  readonly quiet: Duration.DurationInput
  /** How often the pool is looked at; at most one connection is closed each time. */
  readonly every: Duration.DurationInput
}

/**
 * Closes the pool's connections beyond `keep` one at a time, once the pool has had an idle one at every look
 * for `quiet`, instead of node-postgres's idle timer, which closes each connection a fixed time after its last
 * use. Connections that a burst opened are released together, so their timers fired together: Postgres ends a
 * connection's backend process when it closes (about 10 ms of its time on the bench's machine), and ten of them
 * at once held up the queries on the other connections for up to 250 ms. The pool must be made with
 * `idleTimeoutMillis: 0` (node-postgres's own timer off).
 */
export const trimIdle = (pool: pg.Pool, options: IdleTrimOptions): Effect.Effect<never> => {
  const looks = Math.max(1, Math.ceil(Duration.toMillis(options.quiet) / Duration.toMillis(options.every)))
  // Looks in a row at which the pool had a connection to spare.
  let spare = 0
  // One idle connection, taken from the pool (none is waiting, so no query is kept waiting for it) and closed.
  const closeOne = Effect.tryPromise(() => pool.connect()).pipe(
    Effect.map((client) => client.release(true)),
    Effect.ignore
  )
  const look = Effect.suspend(() => {
    spare = pool.idleCount > 0 && pool.waitingCount === 0 && pool.totalCount > options.keep ? spare + 1 : 0
    return spare >= looks ? closeOne : Effect.void
  })
  // Interruptible even when forked from an uninterruptible region (a layer built inside an acquire), which the
  // fiber would otherwise inherit: closing its scope would then wait for it forever.
  return Effect.repeat(look, Schedule.spaced(options.every)).pipe(Effect.zipRight(Effect.never), Effect.interruptible)
}
