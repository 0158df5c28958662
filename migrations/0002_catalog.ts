/*
 * ProjectService and TaskService (issue #28).
 *
 * - `projects` holds the projects created through ProjectService. Projects that runs name but that were never
 *   created are listed from `runs` (its `runs_scope_created_idx` leads with `project`, so their distinct ids are
 *   found by index lookups, not a scan). `labels` is a JSON object, `domains` a JSON array of domain ids, NULL
 *   for the configured ones (`runs.domains`).
 * - `tasks` gains who deployed a task and whether its template is an entrypoint (NULL: not known, for the rows
 *   CreateRun recorded before); `tasks_name_created_idx` serves "the latest version of each task".
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

export const projectStates = ["ACTIVE", "ARCHIVED", "SYSTEM_GENERATED", "SYSTEM_ARCHIVED"] as const

export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const pg = sql.onDialectOrElse({ pg: () => true, orElse: () => false })
  const time = pg ? "TIMESTAMPTZ" : "TEXT"
  const now = pg ? "now()" : "(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))"
  const json = pg ? "JSONB" : "TEXT"
  const statements = [
    `CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    labels ${json} NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'ACTIVE' CHECK (state IN (${projectStates.map((s) => `'${s}'`).join(", ")})),
    org TEXT NOT NULL DEFAULT '',
    domains ${json},
    created_at ${time} NOT NULL DEFAULT ${now},
    updated_at ${time} NOT NULL DEFAULT ${now}
  )`,
    "ALTER TABLE tasks ADD COLUMN deployed_by TEXT",
    "ALTER TABLE tasks ADD COLUMN is_entrypoint INTEGER",
    "CREATE INDEX tasks_name_created_idx ON tasks (project, domain, name, created_at, version)"
  ]
  yield* Effect.forEach(statements, (statement) => sql.unsafe(statement), { discard: true })
})
