import * as Reactivity from "@effect/experimental/Reactivity"
import { SqlClient } from "@effect/sql"
import { SqlError } from "@effect/sql/SqlError"
import { PgClient } from "@effect/sql-pg"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { type ConfigError, Context, Duration, Effect, Layer, Redacted } from "effect"
import pg from "pg"
import { dbPoolConnections, labels, registerReading } from "../../ports/Metrics.js"
import { trimIdle } from "./PgIdleTrim.js"
import { type PgExtraOptions, parseExtraOptions } from "./PgOptions.js"
import { preparedQuery } from "./SqlPrepared.js"
import { checkpointInBackground } from "./SqliteCheckpoints.js"

export interface SqliteOptions {
  readonly file: string
}

export interface PostgresOptions {
  readonly host: string
  readonly port: number
  readonly dbname: string
  readonly username: string
  readonly password: Redacted.Redacted<string>
  readonly extraOptions: string
  readonly maxIdleConnections: number
  readonly maxOpenConnections: number
  readonly connMaxLifeTime: Duration.Duration
}

/** A database in memory has no write-ahead log to checkpoint. */
const inMemory = (file: string) => file === "" || file === ":memory:" || file.startsWith("file::memory:")

/** SQLite in WAL mode, waiting up to 5 s for a lock held by another process; checkpoints run on a worker thread. */
export const layerSqlite = (
  options: SqliteOptions
): Layer.Layer<SqliteClient.SqliteClient | SqlClient.SqlClient, SqlError> =>
  Layer.scopedContext(
    Effect.gen(function*() {
      const client = yield* SqliteClient.make({ filename: options.file }).pipe(
        Effect.catchAllDefect((cause) =>
          Effect.fail(new SqlError({ cause, message: `Cannot open the SQLite database ${options.file}` }))
        )
      )
      yield* client`PRAGMA journal_mode = WAL`
      yield* client`PRAGMA busy_timeout = 5000`
      yield* client`PRAGMA foreign_keys = ON`
      yield* client`PRAGMA synchronous = NORMAL`
      if (!inMemory(options.file)) yield* checkpointInBackground(client, { file: options.file, every: "1 second" })
      return Context.make(SqliteClient.SqliteClient, client).pipe(Context.add(SqlClient.SqlClient, client))
    })
  ).pipe(Layer.provide(Reactivity.layer))

/** `2024-05-01 10:00:00.12+00` (the session runs in UTC) as `2024-05-01T10:00:00.120000Z`. */
const isoTimestamp = (text: string): string => {
  const match = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?(?:\+00(?::00)?)?$/.exec(text)
  return match === null ? text : `${match[1]}T${match[2]}.${(match[3] ?? "").padEnd(6, "0")}Z`
}

const oid = { int8: 20, timestamp: 1114, timestamptz: 1184, numeric: 1700, json: 114, jsonb: 3802 }

// Rows decode alike on both databases: numbers for BIGINT and NUMERIC (ids and durations stay far below 2^53),
// ISO-8601 UTC text for timestamps, JSON as its text (the store keeps it for people and never reads into it, so
// parsing it would be wasted work).
const types = {
  getTypeParser: (id: number, format?: "text" | "binary") => {
    if (id === oid.int8 || id === oid.numeric) return (value: string) => Number(value)
    if (id === oid.timestamp || id === oid.timestamptz) return (value: string) => isoTimestamp(value)
    if (id === oid.json || id === oid.jsonb) return (value: string) => value
    return pg.types.getTypeParser(id, format)
  }
}

interface PoolSettings {
  readonly connection: object
  readonly extra: PgExtraOptions
  readonly max?: number
  /** Connections kept open when idle; the others close one a second once the pool has spared one for 10 s. */
  readonly keepIdle?: number
  readonly lifetimeSeconds?: number
}

/** node-postgres's own pool size, and the connections kept idle when nothing says otherwise. */
const defaultKeepIdle = 10

const poolStates = ["idle", "used", "waiting"].map((state) => [state, labels([["state", state]])] as const)

/** The pool's connections by state, when the metrics are read. */
const readPool = (pool: pg.Pool) =>
  Effect.sync(() => {
    const counts: Record<string, number> = {
      idle: pool.idleCount,
      used: pool.totalCount - pool.idleCount,
      waiting: pool.waitingCount
    }
    for (const [state, tags] of poolStates) dbPoolConnections.unsafeUpdate(counts[state]!, tags)
  })

/*
 * Built on a pool of our own: `PgClient.layer` runs a test query and fails when the database is down, which
 * would stop the service from starting. This pool connects on demand, so queries fail with SqlError while
 * Postgres is away and work again once it is back; a broken connection is dropped, not reused.
 */
const layerPool = (settings: PoolSettings): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient> =>
  PgClient.layerFromPool({
    acquire: Effect.acquireRelease(
      Effect.sync(() => {
        const pool = new pg.Pool({
          ...settings.connection,
          ...settings.extra,
          max: settings.max,
          // Idle connections are closed by `trimIdle`, not by node-postgres's timer.
          idleTimeoutMillis: 0,
          maxLifetimeSeconds: settings.lifetimeSeconds ?? 0,
          keepAlive: true,
          types
        })
        // An idle connection lost with its server is reported here; without a listener the process would crash.
        pool.on("error", () => undefined)
        pool.on("connect", (client) => {
          const query = client.query.bind(client) as (...args: ReadonlyArray<unknown>) => unknown
          Object.assign(client, { query: (...args: ReadonlyArray<unknown>) => query(...preparedQuery(args)) })
        })
        return pool
      }),
      (pool) => Effect.promise(() => pool.end()).pipe(Effect.interruptible, Effect.timeoutOption("2 seconds"))
    ).pipe(
      Effect.tap((pool) =>
        Effect.forkScoped(trimIdle(pool, { keep: settings.keepIdle ?? defaultKeepIdle, quiet: "10 seconds", every: "1 second" }))
      ),
      Effect.tap((pool) => registerReading(readPool(pool)))
    )
  }).pipe(Layer.orDie)

const lifetimeSeconds = (lifetime: Duration.Duration) =>
  Duration.isFinite(lifetime) ? Math.max(0, Math.ceil(Duration.toSeconds(lifetime))) : 0

/** node-postgres connection settings (without pool settings) from the service's configuration. */
export const pgConnection = (options: PostgresOptions) => {
  const password = Redacted.value(options.password)
  return {
    host: options.host,
    port: options.port,
    database: options.dbname,
    user: options.username,
    ...(password === "" ? {} : { password })
  }
}

/** Postgres from the service's configuration; fails only when `extraOptions` cannot be used. */
export const layerPostgres = (
  options: PostgresOptions
): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, ConfigError.ConfigError> =>
  Layer.unwrapEffect(
    Effect.map(parseExtraOptions(options.extraOptions), (extra) => {
      const max = options.maxOpenConnections > 0 ? options.maxOpenConnections : undefined
      return layerPool({
        connection: pgConnection(options),
        extra,
        ...(max === undefined ? {} : { max }),
        keepIdle: Math.max(0, Math.min(options.maxIdleConnections, max ?? defaultKeepIdle)),
        lifetimeSeconds: lifetimeSeconds(options.connMaxLifeTime)
      })
    })
  )

/** Postgres from a `postgres://` URL, with the default pool; for tests and tools. */
export const layerPostgresUrl = (url: string): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient> =>
  Layer.unwrapEffect(
    Effect.map(Effect.orDie(parseExtraOptions("")), (extra) => layerPool({ connection: { connectionString: url }, extra }))
  )
