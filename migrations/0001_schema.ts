/*
 * The whole schema of SPEC section 3, for SQLite and Postgres.
 *
 * - The seed's five tables keep every seed column; the others are additions. Binary protobuf (`*_pb`) is the
 *   source of truth, the JSON columns are its rendering for people.
 * - Times: TIMESTAMPTZ (microseconds) on Postgres, ISO-8601 text with milliseconds on SQLite.
 * - Runs are listed from their root actions (`actions WHERE parent_action_name IS NULL`, name `a0`), joined to
 *   `runs` for the run-level columns. The root row already holds what ListRuns filters and sorts on (phase,
 *   task id, creator, trigger, times), so nothing is copied onto `runs` and kept in sync; the partial
 *   `actions_root_*` indexes serve "runs of a scope [filtered by phase | task | creator | trigger] ordered by
 *   created_at" in both directions, with `run_name` as the tie-breaker of the keyset. A query must spell
 *   `parent_action_name IS NULL` for either planner to pick them.
 * - `action_events` is looked up by (project, domain, run_name, action_name, attempt): a prefix of its unique
 *   key, so that unique index serves it.
 * - `logs_available` is 0/1 on both databases, so rows decode the same way.
 * - `outbox` holds what to dispatch (action, kind, abort reason), not the request itself: the worker builds
 *   that from the run when it delivers. `claimed_until` is a worker's lease on a row; `outbox_run_idx` serves
 *   "the oldest pending request of this run".
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

interface Dialect {
  readonly id: string
  readonly time: string
  readonly now: string
  readonly json: string
  readonly bytes: string
}

const postgres: Dialect = {
  id: "BIGSERIAL PRIMARY KEY",
  time: "TIMESTAMPTZ",
  now: "now()",
  json: "JSONB",
  bytes: "BYTEA"
}

const sqlite: Dialect = {
  id: "INTEGER PRIMARY KEY AUTOINCREMENT",
  time: "TEXT",
  now: "(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
  json: "TEXT",
  bytes: "BLOB"
}

const phases = [
  "PHASE_QUEUED",
  "PHASE_WAITING_FOR_RESOURCES",
  "PHASE_INITIALIZING",
  "PHASE_RUNNING",
  "PHASE_SUCCEEDED",
  "PHASE_FAILED",
  "PHASE_ABORTED",
  "PHASE_TIMED_OUT",
  "PHASE_PAUSED"
]

const oneOf = (column: string, values: ReadonlyArray<string>) =>
  `CHECK (${column} IN (${values.map((value) => `'${value}'`).join(", ")}))`

const statements = (d: Dialect): ReadonlyArray<string> => {
  const stamps = `created_at ${d.time} NOT NULL DEFAULT ${d.now},
    updated_at ${d.time} NOT NULL DEFAULT ${d.now}`
  const root = "WHERE parent_action_name IS NULL"
  return [
    `CREATE TABLE runs (
    id ${d.id},
    org TEXT NOT NULL DEFAULT '',
    project TEXT NOT NULL,
    domain TEXT NOT NULL,
    name TEXT NOT NULL,
    root_action_name TEXT NOT NULL,
    trigger_org TEXT,
    trigger_project TEXT,
    trigger_domain TEXT,
    trigger_name TEXT,
    run_spec ${d.json} NOT NULL,
    run_spec_pb ${d.bytes},
    cluster TEXT,
    fingerprint TEXT,
    request_id TEXT,
    created_by_principal TEXT,
    created_by_k8s_service_account TEXT,
    ${stamps},
    UNIQUE (project, domain, name)
  )`,
    "CREATE INDEX runs_scope_created_idx ON runs (project, domain, created_at, id)",
    "CREATE INDEX runs_request_id_idx ON runs (request_id, created_at) WHERE request_id IS NOT NULL",
    `CREATE TABLE actions (
    id ${d.id},
    org TEXT NOT NULL DEFAULT '',
    project TEXT NOT NULL,
    domain TEXT NOT NULL,
    run_name TEXT NOT NULL,
    name TEXT NOT NULL,
    run_id BIGINT NOT NULL REFERENCES runs (id),
    parent_action_name TEXT,
    action_type TEXT NOT NULL ${oneOf("action_type", ["TASK", "TRACE", "CONDITION"])},
    phase TEXT NOT NULL DEFAULT 'PHASE_QUEUED' ${oneOf("phase", phases)},
    phase_number INTEGER NOT NULL DEFAULT 1,
    attempts INTEGER NOT NULL DEFAULT 1,
    cache_status INTEGER NOT NULL DEFAULT 0,
    group_name TEXT,
    task_org TEXT,
    task_project TEXT,
    task_domain TEXT,
    task_name TEXT,
    task_version TEXT,
    task_type TEXT,
    short_name TEXT,
    function_name TEXT,
    environment_name TEXT,
    run_source TEXT,
    trigger_name TEXT,
    created_by TEXT,
    task_spec ${d.json},
    task_spec_pb ${d.bytes},
    trace_spec ${d.json},
    trace_spec_pb ${d.bytes},
    condition_spec ${d.json},
    condition_spec_pb ${d.bytes},
    input_uri TEXT,
    run_output_base TEXT,
    outputs_uri TEXT,
    metadata ${d.json},
    metadata_pb ${d.bytes},
    error_info ${d.json},
    error_info_pb ${d.bytes},
    abort_reason TEXT,
    aborted_by TEXT,
    abort_info_pb ${d.bytes},
    started_at ${d.time},
    ended_at ${d.time},
    duration_ms BIGINT,
    ${stamps},
    UNIQUE (project, domain, run_name, name)
  )`,
    "CREATE INDEX actions_run_created_idx ON actions (project, domain, run_name, created_at, name)",
    "CREATE INDEX actions_run_id_idx ON actions (run_id)",
    `CREATE INDEX actions_root_created_idx ON actions (created_at, project, domain, run_name) ${root}`,
    `CREATE INDEX actions_root_scope_idx ON actions (project, domain, created_at, run_name) ${root}`,
    `CREATE INDEX actions_root_phase_idx ON actions (project, domain, phase_number, created_at, run_name) ${root}`,
    `CREATE INDEX actions_root_task_idx ON actions (task_project, task_domain, task_name, task_version, created_at, run_name) ${root}`,
    `CREATE INDEX actions_root_task_name_idx ON actions (project, domain, task_name, task_version, created_at, run_name) ${root}`,
    `CREATE INDEX actions_root_creator_idx ON actions (project, domain, created_by, created_at, run_name) ${root}`,
    `CREATE INDEX actions_root_trigger_idx ON actions (project, domain, trigger_name, created_at, run_name) ${root}`,
    `CREATE TABLE action_attempts (
    id ${d.id},
    action_id BIGINT NOT NULL REFERENCES actions (id) ON DELETE CASCADE,
    attempt_number INTEGER NOT NULL,
    phase TEXT NOT NULL DEFAULT 'PHASE_QUEUED' ${oneOf("phase", phases)},
    start_time ${d.time},
    end_time ${d.time},
    outputs ${d.json},
    outputs_pb ${d.bytes},
    log_info ${d.json},
    log_info_pb ${d.bytes},
    log_context ${d.json},
    log_context_pb ${d.bytes},
    error_info ${d.json},
    error_info_pb ${d.bytes},
    cluster TEXT,
    cache_status INTEGER NOT NULL DEFAULT 0,
    logs_available INTEGER NOT NULL DEFAULT 0,
    ${stamps},
    UNIQUE (action_id, attempt_number)
  )`,
    `CREATE TABLE cluster_events (
    id ${d.id},
    attempt_id BIGINT NOT NULL REFERENCES action_attempts (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL DEFAULT 0,
    occurred_at ${d.time} NOT NULL,
    message TEXT NOT NULL,
    created_at ${d.time} NOT NULL DEFAULT ${d.now}
  )`,
    "CREATE INDEX cluster_events_attempt_idx ON cluster_events (attempt_id, seq)",
    `CREATE TABLE phase_transitions (
    id ${d.id},
    attempt_id BIGINT NOT NULL REFERENCES action_attempts (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL DEFAULT 0,
    phase TEXT NOT NULL ${oneOf("phase", phases)},
    start_time ${d.time} NOT NULL,
    end_time ${d.time},
    created_at ${d.time} NOT NULL DEFAULT ${d.now}
  )`,
    "CREATE INDEX phase_transitions_attempt_idx ON phase_transitions (attempt_id, seq)",
    `CREATE TABLE action_events (
    id ${d.id},
    org TEXT NOT NULL DEFAULT '',
    project TEXT NOT NULL,
    domain TEXT NOT NULL,
    run_name TEXT NOT NULL,
    action_name TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    phase TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 0,
    reported_time ${d.time},
    updated_time ${d.time},
    error_kind TEXT,
    event ${d.json},
    event_pb ${d.bytes} NOT NULL,
    created_at ${d.time} NOT NULL DEFAULT ${d.now},
    UNIQUE (project, domain, run_name, action_name, attempt, phase, version)
  )`,
    `CREATE TABLE tasks (
    id ${d.id},
    org TEXT NOT NULL DEFAULT '',
    project TEXT NOT NULL,
    domain TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    spec ${d.json},
    spec_pb ${d.bytes} NOT NULL,
    ${stamps},
    UNIQUE (project, domain, name, version)
  )`,
    `CREATE TABLE outbox (
    id ${d.id},
    project TEXT NOT NULL,
    domain TEXT NOT NULL,
    run_name TEXT NOT NULL,
    action_name TEXT NOT NULL,
    kind TEXT NOT NULL ${oneOf("kind", ["enqueue", "abort"])},
    reason TEXT,
    state TEXT NOT NULL DEFAULT 'pending' ${oneOf("state", ["pending", "delivered", "failed"])},
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at ${d.time} NOT NULL DEFAULT ${d.now},
    claimed_until ${d.time},
    last_error TEXT,
    ${stamps},
    delivered_at ${d.time}
  )`,
    "CREATE INDEX outbox_due_idx ON outbox (state, next_attempt_at)",
    "CREATE INDEX outbox_run_idx ON outbox (project, domain, run_name, state, id)"
  ]
}

export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const dialect = sql.onDialectOrElse({ pg: () => postgres, orElse: () => sqlite })
  yield* Effect.forEach(statements(dialect), (statement) => sql.unsafe(statement), { discard: true })
})
