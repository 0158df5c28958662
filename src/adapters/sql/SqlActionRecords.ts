import type { SqlClient, Statement } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Effect } from "effect"
import type { RebuildAttempt } from "../../domain/Events.js"
import { actionKeyText, runKeyText } from "../../domain/Ids.js"
import type { ActionRecord } from "../../domain/Records.js"
import type { Change } from "../../ports/ChangeFeed.js"
import type { makeNotice } from "./SqlChangeNotices.js"
import type { makeEvents } from "./SqlEvents.js"
import { actionRow, dateOf, runKeysMatching } from "./SqlRows.js"
import type { WriteGroup } from "./SqlWriteBatch.js"

// recordAction: the action inserted under its run, and the attempts of events that came before it rebuilt.

/** One call of recordAction. */
export interface ActionToRecord {
  readonly action: ActionRecord
  readonly rebuild: RebuildAttempt | undefined
  readonly runCreatedAt: Date | undefined
}

/** Created, kept (recorded before), or no such run: `ActionMissing` is the caller's to raise. */
export type RecordOutcome = "created" | "kept" | "missing"

type Notices = Effect.Effect.Success<typeof makeNotice>

interface RunRow {
  readonly id: number
  readonly project: string
  readonly domain: string
  readonly name: string
  readonly created_at: string
}

export const makeActionRecords = (
  sql: SqlClient.SqlClient,
  events: ReturnType<typeof makeEvents>,
  notices: Notices,
  /** The lock to read the runs with (see SqlRunStore's `keepRun`). */
  keepRun: Statement.Fragment
) => {
  /** The runs of `actions` that exist, by run key text: one statement. */
  const runsOf = (actions: ReadonlyArray<ActionRecord>): Effect.Effect<Map<string, RunRow>, SqlError> => {
    const keys = Array.from(new Map(actions.map(({ key }) => [runKeyText(key.run), key.run])).values())
    return Effect.map(
      Effect.forEach(runKeysMatching(sql, "", keys), (matching) =>
        sql<RunRow>`SELECT id, project, domain, name, created_at FROM runs WHERE ${matching} ${keepRun}`),
      (results) => new Map(results.flat().map((row) => [runKeyText(row), row]))
    )
  }

  /**
   * The records of a batch together: one statement reads their runs, one inserts every new action (each key once:
   * a second record of one action in the batch is "kept", as it would be after the first), one reads the events
   * that came before them and one writes the attempts rebuilt from those, then the notices. The same statements,
   * and answers, as each record alone, in fewer round trips.
   */
  const many = (inputs: ReadonlyArray<ActionToRecord>): Effect.Effect<ReadonlyArray<RecordOutcome>, SqlError> =>
    Effect.gen(function*() {
      const toRebuild = inputs.filter((input) => input.rebuild !== undefined).map((input) => input.action.key)
      if (toRebuild.length > 0) yield* events.lock(toRebuild)
      const runs = yield* runsOf(inputs.map((input) => input.action))
      const seen = new Set<string>()
      const rows: Array<ReturnType<typeof actionRow>> = []
      const outcomes = inputs.map((input): RecordOutcome | ActionToRecord => {
        const run = runs.get(runKeyText(input.action.key.run))
        if (run === undefined) return "missing"
        if (input.runCreatedAt !== undefined && dateOf(run.created_at).getTime() !== input.runCreatedAt.getTime()) {
          return "missing"
        }
        const text = actionKeyText(input.action.key)
        if (seen.has(text)) return "kept"
        seen.add(text)
        rows.push(actionRow(input.action, run.id))
        return input
      })
      const ids = new Map<string, number>()
      if (rows.length > 0) {
        const inserted = yield* sql<{ id: number; project: string; domain: string; run_name: string; name: string }>`
          INSERT INTO actions ${sql.insert(rows)} ON CONFLICT (project, domain, run_name, name) DO NOTHING
          RETURNING id, project, domain, run_name, name`
        for (const row of inserted) {
          ids.set(actionKeyText({ run: { project: row.project, domain: row.domain, name: row.run_name }, name: row.name }), row.id)
        }
      }
      const created = outcomes.flatMap((outcome) => {
        if (typeof outcome === "string") return []
        const id = ids.get(actionKeyText(outcome.action.key))
        return id === undefined ? [] : [{ key: outcome.action.key, id, rebuild: outcome.rebuild }]
      })
      const rebuilt = created.flatMap(({ id, key, rebuild }) => (rebuild === undefined ? [] : [{ key, actionId: id, rebuild }]))
      if (rebuilt.length > 0) yield* events.rebuildActions(rebuilt, new Date(yield* Clock.currentTimeMillis))
      yield* notices.within(sql, created.map(({ key }): Change => ({ action: key, kind: "created" })))
      return outcomes.map((outcome) =>
        typeof outcome === "string" ? outcome : ids.has(actionKeyText(outcome.action.key)) ? "created" : "kept"
      )
    })

  /** One record alone: the same statements as a batch of one. */
  const one = (input: ActionToRecord): Effect.Effect<RecordOutcome, SqlError> =>
    Effect.map(many([input]), (outcomes) => outcomes[0]!)

  const group: WriteGroup<ActionToRecord, RecordOutcome> = { one, many, atomic: false }

  return { group }
}
