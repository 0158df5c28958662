import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Layer } from "effect"
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { layerPostgresUrl, layerSqlite } from "../../src/adapters/sql/SqlClients.js"

/**
 * The admin URL of the Postgres the tests may create databases in (`TEST_POSTGRES_URL`), or undefined when
 * Postgres tests are to be skipped. In CI (`CI` set) a missing URL is an error: the suites must not pass
 * silently without Postgres.
 */
export const postgresAdminUrl = (): string | undefined => {
  const url = process.env["TEST_POSTGRES_URL"]
  const ci = process.env["CI"]
  if ((url === undefined || url === "") && ci !== undefined && ci !== "" && ci !== "false" && ci !== "0") {
    throw new Error("TEST_POSTGRES_URL must be set in CI (e.g. postgres://postgres@127.0.0.1:5432/postgres)")
  }
  return url === "" ? undefined : url
}

/** A path in a temporary directory that is removed with the scope. */
export const freshSqliteFile = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "runs-test-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
).pipe(Effect.map((dir) => join(dir, "runs.db")))

const withAdmin = <A>(f: (sql: SqlClient.SqlClient) => Effect.Effect<A, SqlError>) => {
  const admin = postgresAdminUrl()
  return admin === undefined
    ? Effect.dieMessage("TEST_POSTGRES_URL is not set")
    : Effect.flatMap(SqlClient.SqlClient, (sql) => f(sql)).pipe(Effect.provide(layerPostgresUrl(admin)))
}

/** A new, empty Postgres database, dropped (with its open connections) when the scope closes; its URL. */
export const freshPostgresUrl = Effect.gen(function*() {
  const name = `runs_test_${randomBytes(6).toString("hex")}`
  yield* Effect.acquireRelease(
    withAdmin((sql) => sql`CREATE DATABASE ${sql(name)}`),
    () => Effect.orDie(withAdmin((sql) => sql`DROP DATABASE IF EXISTS ${sql(name)} WITH (FORCE)`))
  )
  const url = new URL(postgresAdminUrl() ?? "")
  url.pathname = `/${name}`
  return { name, url: url.toString() }
})

/** SqlClient on a fresh SQLite file; every build of the layer gets its own. */
export const layerTestSqlite: Layer.Layer<SqlClient.SqlClient, SqlError> = Layer.unwrapScoped(
  Effect.map(freshSqliteFile, (file) => layerSqlite({ file }))
)

/** SqlClient on a fresh Postgres database; every build of the layer gets its own. */
export const layerTestPostgres: Layer.Layer<SqlClient.SqlClient, SqlError> = Layer.unwrapScoped(
  Effect.map(freshPostgresUrl, ({ url }) => layerPostgresUrl(url))
)
