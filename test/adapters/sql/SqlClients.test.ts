import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Redacted, Schedule } from "effect"
import { layerPostgres, layerPostgresUrl, layerSqlite } from "../../../src/adapters/sql/SqlClients.js"
import { preparedMarker } from "../../../src/adapters/sql/SqlPrepared.js"
import { freshPostgresUrl, freshSqliteFile, layerTestSqlite, postgresAdminUrl } from "../../support/TestDatabases.js"

const optionsFor = (url: string, extraOptions: string, maxOpenConnections = 4) => {
  const parsed = new URL(url)
  return {
    host: parsed.hostname,
    port: Number(parsed.port || 5432),
    dbname: parsed.pathname.slice(1),
    username: decodeURIComponent(parsed.username),
    password: Redacted.make(decodeURIComponent(parsed.password)),
    extraOptions,
    maxIdleConnections: 1,
    maxOpenConnections,
    connMaxLifeTime: Duration.hours(1)
  }
}

describe("SqlClients [sqlite]", () => {
  it.effect("opens the database in WAL mode, waiting for locks, with foreign keys on", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      expect(yield* sql`PRAGMA journal_mode`).toEqual([{ journal_mode: "wal" }])
      expect(yield* sql`PRAGMA busy_timeout`).toEqual([{ timeout: 5000 }])
      expect(yield* sql`PRAGMA foreign_keys`).toEqual([{ foreign_keys: 1 }])
      expect(yield* sql`PRAGMA synchronous`).toEqual([{ synchronous: 1 }])
    }).pipe(Effect.provide(layerTestSqlite)))

  it.effect("fails with SqlError, not a defect, when the file cannot be opened", () =>
    Effect.gen(function*() {
      const file = yield* freshSqliteFile
      const error = yield* Effect.flip(Effect.provide(SqlClient.SqlClient, layerSqlite({ file: `${file}/no/such/dir.db` })))
      expect(error._tag).toBe("SqlError")
    }).pipe(Effect.scoped))
})

describe("SqlClients [postgres] while the database is down", () => {
  it.live("builds, then fails queries with SqlError without hanging", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const error = yield* Effect.flip(sql`SELECT 1`)
      expect(error._tag).toBe("SqlError")
    }).pipe(
      Effect.provide(layerPostgres(optionsFor("postgres://postgres:secret@127.0.0.1:1/runs", "sslmode=disable"))),
      Effect.timeout("5 seconds")
    ))

  it.effect("refuses extraOptions it cannot use, naming the key", () =>
    Effect.gen(function*() {
      const options = optionsFor("postgres://postgres@127.0.0.1:1/runs", "sslmode=disable sslsni=1")
      const error = yield* Effect.flip(Effect.provide(SqlClient.SqlClient, layerPostgres(options)))
      expect(String(error)).toContain("database.postgres.extraOptions")
      expect(String(error)).toContain("sslsni")
    }))
})

describe.skipIf(postgresAdminUrl() === undefined)("SqlClients [postgres]", () => {
  it.effect("honours extraOptions, runs the session in UTC and decodes rows like SQLite", () =>
    Effect.gen(function*() {
      const { url } = yield* freshPostgresUrl
      const rows = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql<{ app: string; zone: string; at: unknown; big: unknown; bytes: unknown }>`SELECT
          current_setting('application_name') AS app, current_setting('TimeZone') AS zone,
          TIMESTAMPTZ '2024-05-01 12:00:00.25+02' AS at, 9007199254740991::bigint AS big,
          ${Buffer.from([0, 1, 255])}::bytea AS bytes`).pipe(
          Effect.provide(layerPostgres(optionsFor(url, "sslmode=disable application_name='runs test'")))
        )
      expect(rows).toEqual([{
        app: "runs test",
        zone: "UTC",
        at: "2024-05-01T10:00:00.250000Z",
        big: 9007199254740991,
        bytes: Buffer.from([0, 1, 255])
      }])
    }).pipe(Effect.scoped))

  it.live("opens no more than maxOpenConnections", () =>
    Effect.gen(function*() {
      const { url } = yield* freshPostgresUrl
      const pids = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
        Effect.all(
          Array.from({ length: 6 }, () => sql<{ pid: number }>`SELECT pg_backend_pid() AS pid, pg_sleep(0.1)`),
          { concurrency: 6 }
        )).pipe(Effect.provide(layerPostgres(optionsFor(url, "", 2))))
      expect(new Set(pids.map(([row]) => row!.pid)).size).toBeLessThanOrEqual(2)
    }).pipe(Effect.scoped))

  it.live("keeps serving after the server drops its connections (as in a restart)", () =>
    Effect.gen(function*() {
      const { name, url } = yield* freshPostgresUrl
      // Returns once the server has closed every connection to the database, idle pooled ones included.
      const terminate = Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${name}`.pipe(
          Effect.zipRight(sql<{ n: number }>`SELECT count(*) AS n FROM pg_stat_activity WHERE datname = ${name}`),
          Effect.repeat({ until: ([row]) => row!.n === 0, schedule: Schedule.spaced("20 millis") })
        )).pipe(Effect.provide(layerPostgresUrl(postgresAdminUrl() ?? "")))
      yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* Effect.all([sql`SELECT 1`, sql`SELECT 1`], { concurrency: 2 })
        yield* terminate
        const again = sql<{ one: number }>`SELECT 1 AS one`.pipe(
          Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.compose(Schedule.recurs(5))))
        )
        expect(yield* again).toEqual([{ one: 1 }])
      }).pipe(Effect.provide(layerPostgresUrl(url)))
    }).pipe(Effect.scoped))

  it.effect("runs a statement marked prepared as a named prepared statement, the others unnamed", () =>
    Effect.gen(function*() {
      const { url } = yield* freshPostgresUrl
      const names = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
        Effect.gen(function*() {
          // One connection, so that the session asked below is the one that ran the statements.
          for (const value of [1, 2, 3]) {
            expect(yield* sql`${sql.literal(preparedMarker)} SELECT ${value}::int AS n`).toEqual([{ n: value }])
            yield* sql`SELECT ${value}::int AS unmarked`
          }
          return yield* sql<{ name: string; statement: string }>`SELECT name, statement FROM pg_prepared_statements`
        })).pipe(Effect.provide(layerPostgres(optionsFor(url, "", 1))))
      expect(names).toHaveLength(1)
      expect(names[0]?.name).toMatch(/^runs_[0-9a-f]{32}$/)
      expect(names[0]?.statement).toBe(`${preparedMarker} SELECT $1::int AS n`)
    }).pipe(Effect.scoped))
})
