import { describe, expect, it } from "@effect/vitest"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Effect, Option, Schedule, type Scope } from "effect"
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { layerSqlite } from "../../../src/adapters/sql/SqlClients.js"
import { checkpointInBackground } from "../../../src/adapters/sql/SqliteCheckpoints.js"
import { freshSqliteFile } from "../../support/TestDatabases.js"

/** The page count in the database file's header, which only a checkpoint moves while the log is in use. */
const pagesInFile = (file: string) => readFileSync(file).readUInt32BE(28)

const autocheckpoint = Effect.flatMap(SqliteClient.SqliteClient, (sql) => sql<{ wal_autocheckpoint: number }>`PRAGMA wal_autocheckpoint`)
  .pipe(Effect.map((rows) => rows[0]?.wal_autocheckpoint))

/** Retries `check` every 20 ms for up to 5 s. */
const eventually = <A, E, R>(check: Effect.Effect<A, E, R>) =>
  Effect.retry(check, Schedule.spaced("20 millis").pipe(Schedule.upTo("5 seconds")))

/** `body` with SQLite's client alone (WAL mode, its own checkpoints at 1,000 pages) on a fresh file. */
const withPlainClient = <A, E>(
  body: (client: SqliteClient.SqliteClient, file: string) => Effect.Effect<A, E, Scope.Scope | SqliteClient.SqliteClient>
) =>
  Effect.gen(function*() {
    const file = yield* freshSqliteFile
    return yield* Effect.flatMap(SqliteClient.SqliteClient, (client) => body(client, file)).pipe(
      Effect.provide(SqliteClient.layer({ filename: file }))
    )
  }).pipe(Effect.scoped)

const writePages = Effect.gen(function*() {
  const sql = yield* SqliteClient.SqliteClient
  yield* sql`CREATE TABLE filler (body TEXT NOT NULL)`
  for (let batch = 0; batch < 10; batch++) {
    yield* sql.withTransaction(
      Effect.forEach(Array.from({ length: 50 }), () => sql`INSERT INTO filler (body) VALUES (${"x".repeat(2000)})`)
    )
  }
})

describe("checkpointInBackground", () => {
  it.live("moves the log into the database file from a worker thread, with SQLite's own checkpoints off", () =>
    Effect.gen(function*() {
      const file = yield* freshSqliteFile
      yield* Effect.gen(function*() {
        expect(yield* autocheckpoint).toBe(0)
        const before = pagesInFile(file)
        yield* writePages
        // 500 rows of 2 KB: about 250 pages more, which reach the file only through a checkpoint.
        const after = yield* eventually(Effect.filterOrFail(Effect.sync(() => pagesInFile(file)), (pages) => pages > before + 200))
        expect(after).toBeGreaterThan(before + 200)
      }).pipe(Effect.provide(layerSqlite({ file })))
    }).pipe(Effect.scoped))

  it.live("stops with its scope, leaving no log behind", () =>
    Effect.gen(function*() {
      const file = yield* freshSqliteFile
      yield* writePages.pipe(Effect.provide(layerSqlite({ file })))
      expect(existsSync(`${file}-wal`)).toBe(false)
      expect(pagesInFile(file)).toBeGreaterThan(250)
    }).pipe(Effect.scoped))

  it.live("leaves SQLite's own checkpoints on when the worker cannot open the database", () =>
    withPlainClient((client, file) =>
      Effect.gen(function*() {
        const worker = yield* checkpointInBackground(client, { file: join(file, "missing", "runs.db"), every: "10 millis" })
        expect(Option.isNone(worker)).toBe(true)
        expect(yield* autocheckpoint).toBe(1000)
      })
    ))

  it.live("turns SQLite's own checkpoints back on when the worker stops", () =>
    withPlainClient((client, file) =>
      Effect.gen(function*() {
        const worker = yield* checkpointInBackground(client, { file, every: "10 millis" })
        expect(yield* autocheckpoint).toBe(0)
        yield* Effect.promise(() => Option.getOrThrow(worker).terminate())
        expect(yield* eventually(Effect.filterOrFail(autocheckpoint, (pages) => pages === 1000))).toBe(1000)
      })
    ))
})
