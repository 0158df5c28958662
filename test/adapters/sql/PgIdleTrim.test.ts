import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Scope, TestClock } from "effect"
import pg from "pg"
import { trimIdle } from "../../../src/adapters/sql/PgIdleTrim.js"
import { postgresAdminUrl } from "../../support/TestDatabases.js"

/** A pool of `max` connections, all opened (by as many queries at once), with node-postgres's idle timer off. */
const openPool = (max: number) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const pool = new pg.Pool({ connectionString: postgresAdminUrl() ?? "", max, idleTimeoutMillis: 0 })
      await Promise.all(Array.from({ length: max }, () => pool.query("SELECT pg_sleep(0.05)")))
      return pool
    }),
    (pool) => Effect.promise(() => pool.end())
  )

/** Waits (in real time) until the pool holds `size` connections; then lets the look that closed one finish. */
const untilSize = (pool: pg.Pool, size: number) =>
  Effect.promise(async () => {
    const giveUp = Date.now() + 10_000
    while (pool.totalCount !== size) {
      if (Date.now() > giveUp) throw new Error(`the pool holds ${pool.totalCount} connections, not ${size}`)
      await new Promise((resolve) => setTimeout(resolve, 1))
    }
    await new Promise((resolve) => setImmediate(resolve))
  })

/** The pool's connection count every 10 ms for `ms`. */
const sizes = (pool: pg.Pool, ms: number) =>
  Effect.promise(async () => {
    const seen: Array<number> = []
    for (const end = Date.now() + ms; Date.now() < end;) {
      seen.push(pool.totalCount)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    return seen
  })

describe.skipIf(postgresAdminUrl() === undefined)("trimIdle [postgres]", () => {
  it.scoped("closes the connections beyond keep one at a time, once the pool has spared one for the quiet time", () =>
    Effect.gen(function*() {
      const pool = yield* openPool(6)
      expect(pool.totalCount).toBe(6)
      // The looks follow the test clock: each `look()` is one of them, and what it closed is awaited.
      yield* Effect.forkScoped(trimIdle(pool, { keep: 2, quiet: "300 millis", every: "100 millis" }))
      yield* TestClock.adjust("0 millis")
      const look = (expected: number) =>
        Effect.zipRight(TestClock.adjust("100 millis"), untilSize(pool, expected))
      // Nothing closes before the quiet time (the first look was at once, the second here)...
      yield* look(6)
      // ...then, at the third look with a connection to spare, one connection a look, down to keep, and no further.
      for (const size of [5, 4, 3, 2, 2, 2]) {
        yield* look(size)
        expect(pool.totalCount).toBe(size)
      }
      // The pool still serves, on a connection it keeps.
      const { rows } = yield* Effect.promise(() => pool.query<{ one: number }>("SELECT 1 AS one"))
      expect(rows).toEqual([{ one: 1 }])
    }))

  it.live("closes nothing while queries are waiting for a connection", () =>
    Effect.scoped(Effect.gen(function*() {
      const pool = yield* openPool(4)
      const trim = yield* Effect.forkScoped(trimIdle(pool, { keep: 1, quiet: "100 millis", every: "50 millis" }))
      let stop = false
      // Eight loops on four connections: some query is always waiting.
      const loops = Array.from({ length: 8 }, async () => {
        while (!stop) await pool.query("SELECT pg_sleep(0.01)")
      })
      const seen = yield* sizes(pool, 600)
      stop = true
      yield* Effect.promise(() => Promise.all(loops))
      expect(seen.every((size) => size === 4)).toBe(true)
      // Once idle, the spare ones go.
      const after = yield* sizes(pool, 600)
      expect(after.at(-1)).toBe(1)
      yield* Fiber.interrupt(trim)
    })))
})

describe("trimIdle", () => {
  it.live("stops when its scope closes, even when forked from an uninterruptible region (a layer built in an acquire)", () =>
    Effect.gen(function*() {
      // Never used, so never connected: the trimmer only looks at its counts.
      const pool = new pg.Pool({ host: "127.0.0.1", port: 1, idleTimeoutMillis: 0 })
      const scope = yield* Scope.make()
      yield* Effect.uninterruptible(
        Scope.extend(Effect.forkScoped(trimIdle(pool, { keep: 0, quiet: "20 millis", every: "10 millis" })), scope)
      )
      yield* Effect.sleep("50 millis")
      const closed = yield* Scope.close(scope, Exit.void).pipe(Effect.timeout("1 second"), Effect.exit)
      expect(Exit.isSuccess(closed)).toBe(true)
      yield* Effect.promise(() => pool.end())
    }))
})
