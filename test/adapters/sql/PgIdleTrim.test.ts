import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Scope } from "effect"
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
  it.live("closes the connections beyond keep one at a time, once the pool has spared one for the quiet time", () =>
    Effect.scoped(Effect.gen(function*() {
      const pool = yield* openPool(6)
      expect(pool.totalCount).toBe(6)
      yield* Effect.forkScoped(trimIdle(pool, { keep: 2, quiet: "300 millis", every: "100 millis" }))
      const seen = yield* sizes(pool, 1200)
      // Nothing closes before the quiet time, then one connection a look, down to keep.
      expect(seen.slice(0, 20).every((size) => size === 6)).toBe(true)
      expect(seen.filter((size, i) => i === 0 || size !== seen[i - 1])).toEqual([6, 5, 4, 3, 2])
      expect(seen.at(-1)).toBe(2)
      const counts = [3, 4, 5].map((size) => seen.filter((seenSize) => seenSize === size).length)
      // Each step lasts about one look (100 ms at 10 ms a sample), not zero: they were not closed together.
      for (const count of counts) expect(count).toBeGreaterThanOrEqual(5)
      // The pool still serves, on a connection it keeps.
      const { rows } = yield* Effect.promise(() => pool.query<{ one: number }>("SELECT 1 AS one"))
      expect(rows).toEqual([{ one: 1 }])
    })))

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
