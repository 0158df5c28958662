import { SqlClient } from "@effect/sql"
import * as Migrator from "@effect/sql/Migrator"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import { migrations } from "../../../migrations/index.js"

export const migrationsTable = "effect_sql_migrations"

/** Any constant shared by every replica; "RUNS" in ASCII. */
const advisoryLockKey = 0x52554e53

const migrate = Migrator.make({})({ loader: Migrator.fromRecord(migrations), table: migrationsTable })

/*
 * On Postgres the Migrator's own table creation races between replicas, so the whole step runs in one
 * transaction holding an advisory lock. The table is created here, under the lock: the Migrator's probe for it
 * (`SELECT 'table'::regclass`) would abort the surrounding transaction if it failed.
 */
const migrateLocked = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`SELECT pg_advisory_xact_lock(${advisoryLockKey})`
  yield* sql`CREATE TABLE IF NOT EXISTS ${sql(migrationsTable)} (
    migration_id integer primary key,
    created_at timestamp with time zone not null default now(),
    name text not null
  )`
  return yield* migrate
})

/** Applies the migrations not applied yet and returns them as `[id, name]`. */
export const runMigrations: Effect.Effect<
  ReadonlyArray<readonly [id: number, name: string]>,
  SqlError | Migrator.MigrationError,
  SqlClient.SqlClient
> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  return yield* sql.onDialectOrElse({
    pg: () => sql.withTransaction(migrateLocked),
    orElse: () => migrate
  })
}).pipe(
  // The Migrator reports a failing migration as a defect; it is an expected failure here.
  Effect.catchAllDefect((defect) =>
    defect instanceof Migrator.MigrationError ? Effect.fail(defect) : Effect.die(defect)
  ),
  Effect.withSpan("SqlMigrations.run")
)
