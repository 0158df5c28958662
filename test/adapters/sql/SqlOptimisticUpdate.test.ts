import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Context, Deferred, Effect, Exit, Fiber, Layer, Option } from "effect"
import { execFileSync } from "node:child_process"
import { layerPostgresUrl } from "../../../src/adapters/sql/SqlClients.js"
import { runMigrations } from "../../../src/adapters/sql/SqlMigrations.js"
import * as SqlRunStore from "../../../src/adapters/sql/SqlRunStore.js"
import { RunStore } from "../../../src/ports/RunStore.js"
import { submit } from "../../support/Fibers.js"
import { childAction, runView } from "../../support/Fixtures.js"
import { freshPostgresUrl, postgresAdminUrl } from "../../support/TestDatabases.js"

/**
 * Another writer that changes the action `name` of run `runName` (attempts + 10) in a transaction it keeps open,
 * holding the row's lock, until `release`; started once it holds it.
 */
const holdingRow = (sql: SqlClient.SqlClient, runName: string, name: string) =>
  Effect.gen(function*() {
    const locked = yield* Deferred.make<void>()
    const release = yield* Deferred.make<void>()
    const other = yield* sql.withTransaction(Effect.gen(function*() {
      yield* sql`UPDATE actions SET attempts = attempts + 10 WHERE run_name = ${runName} AND name = ${name}`
      yield* Deferred.succeed(locked, undefined)
      yield* Deferred.await(release)
    })).pipe(Effect.fork)
    yield* Deferred.await(locked)
    return { release: Effect.zipRight(Deferred.succeed(release, undefined), Fiber.join(other)) }
  })

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
      const other = yield* holdingRow(sql, view.run.key.name, "c1")
      const seen: Array<number> = []
      const applied = yield* Deferred.make<void>()
      const update = yield* store.updateAction(child.key, (current) => {
        seen.push(current.attempts)
        Deferred.unsafeDone(applied, Exit.void)
        return { ...current, attempts: current.attempts + 1 }
      }).pipe(Effect.fork)
      // The update read attempts 1, as the other writer has not committed; its write is of that version.
      yield* Deferred.await(applied)
      expect(seen).toStrictEqual([1])
      yield* other.release

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
  /** A store on a fresh database and a run with children c1 to c3 (attempts 1). */
  const runWithChildren = Effect.gen(function*() {
    const database = yield* freshPostgresUrl
    const context = yield* Layer.build(SqlRunStore.layer.pipe(Layer.provideMerge(layerPostgresUrl(database.url))))
    yield* Effect.provide(runMigrations, context)
    const store = Context.get(context, RunStore)
    const sql = Context.get(context, SqlClient.SqlClient)
    const view = runView({})
    const children = ["c1", "c2", "c3"].map((name) => childAction(view, name, { attempts: 1 }))
    yield* store.createRun({ view, task: undefined })
    for (const child of children) yield* store.recordAction(child)
    return { database, store, sql, view, children }
  })

  /** `runWithChildren`, and a createRun held in its `beforeCommit` until `release`, so that the writes submitted
   * meanwhile form the next batch. */
  const batchSetUp = Effect.gen(function*() {
    const { children, database, sql, store, view } = yield* runWithChildren
    const held = yield* Deferred.make<void>()
    const release = yield* Deferred.make<void>()
    const holder = yield* Effect.fork(store.createRun({
      view: runView({}),
      task: undefined,
      beforeCommit: Effect.zipRight(Deferred.succeed(held, undefined), Deferred.await(release))
    }))
    yield* Deferred.await(held)
    const versions = Effect.map(
      sql<{ name: string; version: string }>`SELECT name, xmin::text AS version FROM actions
        WHERE run_name = ${view.run.key.name} AND name IN ('c1', 'c2', 'c3') ORDER BY name`,
      (rows) => rows.map((row) => row.version)
    )
    const attempts = Effect.forEach(children, (child) =>
      Effect.map(store.getAction(child.key), (action) => Option.getOrThrow(action).attempts))
    return {
      database,
      store,
      view,
      children,
      versions,
      attempts,
      release: Effect.zipRight(Deferred.succeed(release, undefined), Fiber.join(holder))
    }
  })

  it.live("the updates of a batch are committed in its one transaction, not run again one by one", () =>
    Effect.scoped(Effect.gen(function*() {
      const { attempts, children, release, store, versions } = yield* batchSetUp
      const updates = yield* Effect.forEach([...children, children[0]!], (child) =>
        submit(store.updateAction(child.key, (current) => ({ ...current, attempts: current.attempts * 10 }))))
      yield* release
      const outcomes = yield* Effect.forEach(updates, Fiber.join)
      expect(outcomes.map((outcome) => outcome._tag === "Updated" && outcome.action.attempts)).toStrictEqual([10, 10, 10, 100])
      expect(yield* attempts).toStrictEqual([100, 10, 10])
      // Run again one by one (the batch's way out of a failure), they would have committed one by one.
      expect(new Set(yield* versions).size).toBe(1)
    })), 60_000)

  it.live("a write by another transaction between a batch's read and its write: the batch's updates run again alone, each once", () =>
    Effect.scoped(Effect.gen(function*() {
      const { attempts, children, database, release, store, versions, view } = yield* batchSetUp
      const otherWriter = `const pg = require("pg")
        const client = new pg.Client({ connectionString: process.argv[1] })
        client.connect()
          .then(() => client.query("UPDATE actions SET attempts = attempts + 100 WHERE run_name = $1 AND name = 'c1'", [process.argv[2]]))
          .then(() => client.end(), (error) => { console.error(error.message); process.exit(1) })`
      const seen: Array<number> = []
      const first = yield* submit(store.updateAction(children[0]!.key, (current) => {
        seen.push(current.attempts)
        if (seen.length === 1) execFileSync(process.execPath, ["-e", otherWriter, database.url, view.run.key.name], { stdio: "pipe" })
        return { ...current, attempts: current.attempts + 1 }
      }))
      const others = yield* Effect.forEach(children.slice(1), (child) =>
        submit(store.updateAction(child.key, (current) => ({ ...current, attempts: current.attempts + 1 }))))
      yield* release
      expect((yield* Fiber.join(first))._tag).toBe("Updated")
      for (const other of others) expect((yield* Fiber.join(other))._tag).toBe("Updated")
      expect(seen).toStrictEqual([1, 101])
      expect(yield* attempts).toStrictEqual([102, 2, 2])
      expect(new Set(yield* versions).size).toBe(3)
    })), 60_000)
  it.live("a batch of nothing but updates: a write by another transaction between its read and its write fails its one statement whole, and each update runs again alone, once", () =>
    Effect.scoped(Effect.gen(function*() {
      const { children, database, sql, store, view } = yield* runWithChildren
      const plus = (current: typeof children[0]) => ({ ...current, attempts: current.attempts + 1 })

      // A lone update of c1 waits for another writer's row lock; the updates submitted meanwhile form the next batch.
      const other = yield* holdingRow(sql, view.run.key.name, "c1")
      const applied = yield* Deferred.make<void>()
      const lone = yield* Effect.fork(store.updateAction(children[0]!.key, (current) => {
        Deferred.unsafeDone(applied, Exit.void)
        return plus(current)
      }))
      yield* Deferred.await(applied)

      const otherWriter = `const pg = require("pg")
        const client = new pg.Client({ connectionString: process.argv[1] })
        client.connect()
          .then(() => client.query("UPDATE actions SET attempts = attempts + 100 WHERE run_name = $1 AND name = 'c3'", [process.argv[2]]))
          .then(() => client.end(), (error) => { console.error(error.message); process.exit(1) })`
      const seen: Array<number> = []
      const batched = [
        yield* submit(store.updateAction(children[1]!.key, plus)),
        yield* submit(store.updateAction(children[2]!.key, (current) => {
          seen.push(current.attempts)
          if (seen.length === 1) execFileSync(process.execPath, ["-e", otherWriter, database.url, view.run.key.name], { stdio: "pipe" })
          return plus(current)
        })),
        yield* submit(store.updateAction(children[0]!.key, plus))
      ]
      yield* other.release
      expect((yield* Fiber.join(lone))._tag).toBe("Updated")
      for (const update of batched) expect((yield* Fiber.join(update))._tag).toBe("Updated")
      expect(seen).toStrictEqual([1, 101])
      const attempts = yield* Effect.forEach(children, (child) =>
        Effect.map(store.getAction(child.key), (action) => Option.getOrThrow(action).attempts))
      expect(attempts).toStrictEqual([13, 2, 102])
    })), 60_000)
})
