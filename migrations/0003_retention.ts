/*
 * Retention (`runs.retention.maxAge`) looks for runs whose root action ended before a time, oldest first: a partial
 * index over the roots' end times, on both databases (only finished roots have one, so it stays small and ordered).
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE INDEX actions_root_ended_idx ON actions (ended_at)
    WHERE parent_action_name IS NULL AND ended_at IS NOT NULL`
})
