import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { layerPostgresUrl } from "../../../src/adapters/sql/SqlClients.js"
import { migrationsTable, runMigrations } from "../../../src/adapters/sql/SqlMigrations.js"
import { describeBackends, sqlBackends } from "../../support/backends.js"
import { freshPostgresUrl, postgresAdminUrl } from "../../support/TestDatabases.js"

// The seed README's "Database Schema", column for column.
const seedColumns: Record<string, ReadonlyArray<string>> = {
  runs: [
    "id", "org", "project", "domain", "name", "root_action_name", "trigger_org", "trigger_project", "trigger_domain",
    "trigger_name", "run_spec", "created_by_principal", "created_by_k8s_service_account", "created_at", "updated_at"
  ],
  actions: [
    "id", "org", "project", "domain", "run_name", "name", "run_id", "parent_action_name", "action_type", "phase",
    "task_spec", "trace_spec", "condition_spec", "input_uri", "metadata", "created_at", "updated_at"
  ],
  action_attempts: [
    "id", "action_id", "attempt_number", "phase", "start_time", "end_time", "outputs", "log_info", "log_context",
    "created_at", "updated_at"
  ],
  cluster_events: ["id", "attempt_id", "occurred_at", "message", "created_at"],
  phase_transitions: ["id", "attempt_id", "phase", "start_time", "end_time", "created_at"]
}

const addedColumns: Record<string, ReadonlyArray<string>> = {
  runs: ["fingerprint", "request_id", "run_spec_pb"],
  actions: ["phase_number", "attempts", "cache_status", "ended_at", "duration_ms", "abort_info_pb", "task_spec_pb"],
  action_attempts: ["outputs_pb", "error_info_pb", "cluster", "cache_status", "logs_available"],
  action_events: [
    "project", "domain", "run_name", "action_name", "attempt", "phase", "version", "event_pb", "reported_time",
    "updated_time", "created_at", "facts"
  ],
  tasks: ["project", "domain", "name", "version", "org", "spec_pb", "spec", "created_at"],
  outbox: [
    "id", "project", "domain", "run_name", "kind", "reason", "state", "attempts", "next_attempt_at", "last_error",
    "created_at", "updated_at", "delivered_at", "traceparent"
  ]
}

/** Every migration, as `runMigrations` reports what it applied. */
const applied: ReadonlyArray<readonly [number, string]> = [[1, "schema"], [2, "catalog"], [3, "retention"], [4, "outbox_trace"], [5, "event_facts"]]

const indexes = [
  "action_events_facts_missing_idx", "actions_root_created_idx", "actions_root_creator_idx", "actions_root_ended_idx", "actions_root_phase_idx", "actions_root_scope_idx",
  "actions_root_task_idx", "actions_root_task_name_idx", "actions_root_trigger_idx", "actions_run_created_idx",
  "actions_run_id_idx", "cluster_events_attempt_idx", "outbox_due_idx", "outbox_run_idx",
  "phase_transitions_attempt_idx", "runs_request_id_idx", "runs_scope_created_idx", "tasks_name_created_idx"
]

const columnsOf = (table: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.onDialectOrElse({
      pg: () =>
        sql<{ name: string }>`SELECT column_name AS name FROM information_schema.columns
          WHERE table_schema = current_schema() AND table_name = ${table}`,
      orElse: () => sql<{ name: string }>`SELECT name FROM pragma_table_info(${table})`
    })).pipe(Effect.map((rows) => rows.map((row) => row.name)))

const indexNames = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql.onDialectOrElse({
    pg: () => sql<{ name: string }>`SELECT indexname AS name FROM pg_indexes WHERE schemaname = current_schema()`,
    orElse: () => sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'index'`
  })).pipe(Effect.map((rows) => rows.map((row) => row.name).filter((name) => name.endsWith("_idx"))))

const recorded = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) => sql<{ migration_id: number; name: string }>`SELECT migration_id, name FROM ${sql(migrationsTable)} ORDER BY migration_id`
).pipe(Effect.map((rows) => rows.map((row) => [Number(row.migration_id), row.name])))

describeBackends("SqlMigrations", sqlBackends(), (backend) => {
  it.effect("creates every seed table with all the seed's columns", () =>
    Effect.gen(function*() {
      yield* runMigrations
      for (const [table, columns] of Object.entries(seedColumns)) {
        expect(yield* columnsOf(table), table).toEqual(expect.arrayContaining([...columns]))
      }
    }).pipe(Effect.provide(backend.layer)))

  it.effect("adds the event log, tasks, outbox and the columns listing and ingestion need", () =>
    Effect.gen(function*() {
      yield* runMigrations
      for (const [table, columns] of Object.entries(addedColumns)) {
        expect(yield* columnsOf(table), table).toEqual(expect.arrayContaining([...columns]))
      }
    }).pipe(Effect.provide(backend.layer)))

  it.effect("creates the same named indexes on both databases", () =>
    Effect.gen(function*() {
      yield* runMigrations
      expect([...(yield* indexNames)].sort()).toEqual(indexes)
    }).pipe(Effect.provide(backend.layer)))

  it.effect("applies once and records it when run twice", () =>
    Effect.gen(function*() {
      expect(yield* runMigrations).toEqual(applied)
      expect(yield* runMigrations).toEqual([])
      expect(yield* recorded).toEqual(applied)
    }).pipe(Effect.provide(backend.layer)))

  it.effect("keeps run names unique per (project, domain), whatever the org", () =>
    Effect.gen(function*() {
      yield* runMigrations
      const sql = yield* SqlClient.SqlClient
      const insert = (org: string) =>
        sql`INSERT INTO runs (org, project, domain, name, root_action_name, run_spec)
          VALUES (${org}, 'p', 'd', 'r1', 'a0', '{}')`
      yield* insert("")
      const second = yield* Effect.either(insert("testorg"))
      expect(second._tag).toBe("Left")
    }).pipe(Effect.provide(backend.layer)))

  it.effect("refuses a phase outside the enum and an action of an unknown run", () =>
    Effect.gen(function*() {
      yield* runMigrations
      const sql = yield* SqlClient.SqlClient
      const [run] = yield* sql<{ id: number }>`INSERT INTO runs (project, domain, name, root_action_name, run_spec)
        VALUES ('p', 'd', 'r1', 'a0', '{}') RETURNING id`
      const action = (runId: number, phase: string) =>
        sql`INSERT INTO actions (project, domain, run_name, name, run_id, action_type, phase)
          VALUES ('p', 'd', 'r1', ${`a-${phase}-${runId}`}, ${runId}, 'TASK', ${phase})`
      yield* action(Number(run!.id), "PHASE_RUNNING")
      expect((yield* Effect.either(action(Number(run!.id), "RUNNING")))._tag).toBe("Left")
      expect((yield* Effect.either(action(Number(run!.id) + 1, "PHASE_QUEUED")))._tag).toBe("Left")
    }).pipe(Effect.provide(backend.layer)))
})

describe.skipIf(postgresAdminUrl() === undefined)("SqlMigrations [postgres] replicas", () => {
  it.live("two replicas migrating a fresh database at once both succeed, and it is applied once", () =>
    Effect.gen(function*() {
      for (let round = 0; round < 5; round++) {
        const results = yield* Effect.scoped(Effect.gen(function*() {
          const { url } = yield* freshPostgresUrl
          const replica = runMigrations.pipe(Effect.provide(layerPostgresUrl(url)))
          const both = yield* Effect.all([replica, replica], { concurrency: 2 })
          const rows = yield* recorded.pipe(Effect.provide(layerPostgresUrl(url)))
          return { both, rows }
        }))
        expect([...results.both].sort((a, b) => b.length - a.length)).toEqual([applied, []])
        expect(results.rows).toEqual(applied)
      }
    }), 60_000)
})
