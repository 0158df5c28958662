import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Context, Deferred, Effect, Fiber, Layer, Option } from "effect"
import { execFileSync } from "node:child_process"
import { layerPostgresUrl } from "../../../src/adapters/sql/SqlClients.js"
import { runMigrations } from "../../../src/adapters/sql/SqlMigrations.js"
import * as SqlRunStore from "../../../src/adapters/sql/SqlRunStore.js"
import { RunStore } from "../../../src/ports/RunStore.js"
import { childAction, runView } from "../../support/Fixtures.js"
import { freshPostgresUrl, postgresAdminUrl } from "../../support/TestDatabases.js"

describe.skipIf(postgresAdminUrl() === undefined)("updateAction on Postgres (read, then update of the version read) [postgres]", () => {
  it.live("a write that commits between the read and the update makes the update read and apply again", () =>
    Effect.scoped(Effect.gen(function*() {
      const database = yield* freshPostgresUrl
      const context = yield* Layer.build(SqlRunStore.layer.pipe(Layer.provideMerge(layerPostgresUrl(database.url))))
      yield* Effect.provide(runMigrations, context)
      const store = Context.get(context, RunStore)
      const sql = Context.get(context, SqlClient.SqlClient)
      const view = runView({})
      const child = childAction(view, "c1", { attempts: 1 })
      yield* store.createRun({ view, task: undefined })
      yield* store.recordAction(child)

      // Another writer holds the row, changed, in an open transaction while the update reads and applies.
      const locked = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const other = yield* sql.withTransaction(Effect.gen(function*() {
        yield* sql`UPDATE actions SET attempts = attempts + 10 WHERE run_name = ${view.run.key.name} AND name = 'c1'`
        yield* Deferred.succeed(locked, undefined)
        yield* Deferred.await(release)
      })).pipe(Effect.fork)
      yield* Deferred.await(locked)

      const seen: Array<number> = []
      const update = yield* store.updateAction(child.key, (current) => {
        seen.push(current.attempts)
        return { ...current, attempts: current.attempts + 1 }
      }).pipe(Effect.fork)
      // The update read attempts 1 and now waits for the other writer's row lock.
      yield* Effect.sleep("500 millis")
      expect(seen).toStrictEqual([1])
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(other)

      const outcome = yield* Fiber.join(update)
      expect(seen).toStrictEqual([1, 11])
      expect(outcome._tag === "Updated" && outcome.action.attempts).toBe(12)
      expect(Option.getOrThrow(yield* store.getAction(child.key)).attempts).toBe(12)
    })), 60_000)

  it.live("an update whose row changes under each optimistic try ends in the locked way and loses nothing", () =>
    Effect.scoped(Effect.gen(function*() {
      const database = yield* freshPostgresUrl
      const context = yield* Layer.build(SqlRunStore.layer.pipe(Layer.provideMerge(layerPostgresUrl(database.url))))
      yield* Effect.provide(runMigrations, context)
      const store = Context.get(context, RunStore)
      const view = runView({})
      const child = childAction(view, "c1", { attempts: 1 })
      yield* store.createRun({ view, task: undefined })
      yield* store.recordAction(child)

      // Each time apply runs, another writer (a node process of its own, waited for) tries to add 100 within
      // 300 ms: it commits during the optimistic tries, and times out on the row lock the locked way holds.
      const otherWriter = `const pg = require("pg")
        const client = new pg.Client({ connectionString: process.argv[1] })
        client.connect()
          .then(() => client.query("SET lock_timeout = '300ms'"))
          .then(() => client.query("UPDATE actions SET attempts = attempts + 100 WHERE run_name = $1 AND name = 'c1'", [process.argv[2]]))
          .then(() => client.end(), (error) => { console.error(error.message); process.exit(1) })`
      const writes: Array<"committed" | "waited for the lock"> = []
      const outcome = yield* store.updateAction(child.key, (current) => {
        try {
          execFileSync(process.execPath, ["-e", otherWriter, database.url, view.run.key.name], { stdio: "pipe" })
          writes.push("committed")
        } catch {
          writes.push("waited for the lock")
        }
        return { ...current, attempts: current.attempts + 1 }
      })
      expect(writes).toStrictEqual(["committed", "committed", "committed", "waited for the lock"])
      expect(outcome._tag === "Updated" && outcome.action.attempts).toBe(302)
      expect(Option.getOrThrow(yield* store.getAction(child.key)).attempts).toBe(302)
    })), 60_000)
})
