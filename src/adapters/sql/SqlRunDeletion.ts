import type { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import { type RunKey, rootActionName } from "../../domain/Ids.js"
import { ActionPhase } from "../../domain/Phase.js"
import type { Change } from "../../ports/ChangeFeed.js"
import type { DeleteFinishedRunsInput, DeleteOutcome } from "../../ports/RunStore.js"
import { iso } from "./SqlRows.js"

/** Any constant shared by every replica, other than the migrations' lock; "RETN" in ASCII. */
const retentionLockKey = 0x5245544e

const terminalPhases = [ActionPhase.SUCCEEDED, ActionPhase.FAILED, ActionPhase.ABORTED, ActionPhase.TIMED_OUT]

type Notice = (sql: SqlClient.SqlClient, changes: ReadonlyArray<Change>) => Effect.Effect<void, SqlError>

/**
 * The body of `deleteFinishedRuns`, for a transaction of its own. On Postgres a transaction-scoped advisory lock
 * makes one replica at a time delete (the others answer `Busy` at once, without waiting), and the chosen runs'
 * root and run rows are locked, skipping those another transaction is writing: a root being revived by a retry
 * is not deleted under it, and waits for nothing here. Rows go children first (every foreign key is satisfied
 * at each step), by run id or by (project, domain, run name), all served by indexes.
 */
export const deleteFinishedRuns = <E>(
  sql: SqlClient.SqlClient,
  notice: Notice,
  { beforeCommit, endedBefore, limit }: DeleteFinishedRunsInput<E>
): Effect.Effect<DeleteOutcome, E | SqlError> =>
  Effect.gen(function*() {
    const postgres = sql.onDialectOrElse({ pg: () => true, orElse: () => false })
    if (postgres) {
      const [row] = yield* sql<{ locked: boolean }>`SELECT pg_try_advisory_xact_lock(${retentionLockKey}) AS locked`
      if (row?.locked !== true) return { _tag: "Busy" } as const
    }
    // `ended_at IS NOT NULL` lets the partial index `actions_root_ended_idx` serve the range.
    const found = yield* sql<{ id: number; project: string; domain: string; name: string }>`
      SELECT r.id, r.project, r.domain, r.name FROM actions a JOIN runs r ON r.id = a.run_id
      WHERE a.parent_action_name IS NULL AND a.ended_at IS NOT NULL AND a.ended_at < ${iso(endedBefore)}
      AND a.name = r.root_action_name AND a.phase_number IN ${sql.in(terminalPhases)}
      ORDER BY a.ended_at, r.id LIMIT ${limit}
      ${sql.literal(postgres ? "FOR UPDATE OF a, r SKIP LOCKED" : "")}`
    if (found.length === 0) return { _tag: "Deleted", runs: [] } as const
    const runs: ReadonlyArray<RunKey> = found.map(({ domain, name, project }) => ({ project, domain, name }))
    if (beforeCommit !== undefined) yield* beforeCommit(runs)

    const ids = sql.in(found.map((row) => row.id))
    const ofRuns = sql.or(runs.map((run) =>
      sql`(project = ${run.project} AND domain = ${run.domain} AND run_name = ${run.name})`
    ))
    const attemptIds = sql`SELECT t.id FROM action_attempts t JOIN actions a ON a.id = t.action_id
      WHERE a.run_id IN ${ids}`
    yield* sql`DELETE FROM cluster_events WHERE attempt_id IN (${attemptIds})`
    yield* sql`DELETE FROM phase_transitions WHERE attempt_id IN (${attemptIds})`
    yield* sql`DELETE FROM action_attempts WHERE action_id IN (SELECT id FROM actions WHERE run_id IN ${ids})`
    yield* sql`DELETE FROM actions WHERE run_id IN ${ids}`
    // Events by run, not by action: those of actions never recorded belong to the run too.
    yield* sql`DELETE FROM action_events WHERE ${ofRuns}`
    yield* sql`DELETE FROM outbox WHERE ${ofRuns}`
    yield* sql`DELETE FROM runs WHERE id IN ${ids}`
    yield* notice(sql, runs.map((run) => ({ action: { run, name: rootActionName }, kind: "deleted" as const })))
    return { _tag: "Deleted", runs } as const
  })
