import type { SqlClient, Statement } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import { type ActionKey, actionKeyText } from "../../domain/Ids.js"
import type { ActionPhase } from "../../domain/Phase.js"
import type { ActionRecord } from "../../domain/Records.js"
import type { Change } from "../../ports/ChangeFeed.js"
import type { RunStore, UpdateOutcome } from "../../ports/RunStore.js"
import type { makeNotice } from "./SqlChangeNotices.js"
import type { JsonReader } from "./SqlPayloads.js"
import { preparedMarker } from "./SqlPrepared.js"
import { actionColumnList, actionColumnNameList, actionFieldsRow, actionOfRow, type ActionRow, changedColumns } from "./SqlRows.js"
import type { WriteGroup } from "./SqlWriteBatch.js"

// updateAction: read the action, apply, write what changed.

type Apply = Parameters<RunStore["Type"]["updateAction"]>[1]

/** One call of updateAction. */
export interface ActionUpdate {
  readonly key: ActionKey
  readonly apply: Apply
}

type Notices = Effect.Effect.Success<typeof makeNotice>

/** The action read with its run's root phase and, on Postgres, the id of the transaction that wrote the row version. */
type RowToUpdate = ActionRow & {
  readonly root_phase: number | null
  readonly root_action_name: string
  readonly row_version?: string
}

/** The columns a status update or an abort changes (`actionStateRow`'s), with their Postgres types: `many` writes
 * these of all its actions with one UPDATE. An action with any other column changed has an UPDATE of its own. */
const stateColumns = [
  ["phase", "text"],
  ["phase_number", "integer"],
  ["attempts", "integer"],
  ["cache_status", "integer"],
  ["started_at", "timestamptz"],
  ["ended_at", "timestamptz"],
  ["duration_ms", "bigint"],
  ["abort_reason", "text"],
  ["aborted_by", "text"],
  ["updated_at", "timestamptz"]
] as const

const stateBits = new Map<string, number>(stateColumns.map(([name], i) => [name, 1 << i]))

// Each row's `mask` says which of its columns changed; the others keep what is stored.
const setStateColumns = stateColumns.map(([name], i) =>
  `${name} = CASE WHEN v.mask & ${1 << i} <> 0 THEN v.${name} ELSE a.${name} END`
).join(", ")
const stateRecordType = stateColumns.map(([name, type]) => `${name} ${type}`).join(", ")

export const makeActionUpdates = (sql: SqlClient.SqlClient, readJson: JsonReader, notices: Notices) => {
  // Marks a statement whose text never varies for Postgres to prepare once per connection (see SqlPrepared).
  const prepared = sql.literal(preparedMarker)
  // The action `a` locked, its joined rows not (see SqlRunStore's `lockRows`).
  const lockActionRow = sql.literal(sql.onDialectOrElse({ pg: () => "FOR NO KEY UPDATE OF a", orElse: () => "" }))
  const noLock = sql.literal("")
  // The id of the transaction that wrote the row version read, as text (Postgres only).
  const rowVersion = sql.literal(sql.onDialectOrElse({ pg: () => ", a.xmin::text AS row_version", orElse: () => "" }))
  // Optimistic updates lost in a row before the locked way is taken.
  const optimisticTries = 3

  /** The columns of a `RowToUpdate` of the action `a` of run `r`. */
  const toUpdateColumns = sql.literal(
    `${actionColumnList}, root.phase_number AS root_phase, r.root_action_name`
  )
  /** The root action `root` of the action `a` of run `r` (joined by the unique key: by run id would walk the run). */
  const rootJoin = sql.literal(`LEFT JOIN actions root ON root.project = a.project AND root.domain = a.domain
    AND root.run_name = a.run_name AND root.name = r.root_action_name`)

  /** The action with its run's root phase (the root row unlocked), and on Postgres the row version's id. */
  const actionToUpdate = (key: ActionKey, lock: Statement.Fragment) =>
    sql<RowToUpdate>`SELECT ${toUpdateColumns} ${rowVersion}
      FROM actions a JOIN runs r ON r.id = a.run_id ${rootJoin}
      WHERE a.project = ${key.run.project} AND a.domain = ${key.run.domain} AND a.run_name = ${key.run.name}
      AND a.name = ${key.name} ${lock}`

  type UpdatePlan =
    | { readonly _tag: "Done"; readonly outcome: UpdateOutcome }
    | { readonly _tag: "Write"; readonly row: RowToUpdate; readonly columns: Record<string, unknown> }

  /** What `apply` makes of the row read: an outcome with no write, or the columns to write. */
  const planUpdate = (row: RowToUpdate | undefined, apply: Apply): UpdatePlan => {
    if (row === undefined) return { _tag: "Done", outcome: { _tag: "Missing" } }
    const current = actionOfRow(row, readJson)
    const next = apply(current, { rootPhase: (row.root_phase ?? current.phase) as ActionPhase })
    if (next === undefined) return { _tag: "Done", outcome: { _tag: "Unchanged", action: current } }
    const columns = changedColumns(actionFieldsRow(current), actionFieldsRow(next))
    // Every column as stored already: what is stored is what apply returned.
    if (Object.keys(columns).length === 0) return { _tag: "Done", outcome: { _tag: "Updated", action: current } }
    return { _tag: "Write", row, columns }
  }

  /** Read, apply and write, the action's row locked from the read on: SQLite's way, and Postgres' when the
   * optimistic way keeps losing. */
  const updateLocked = (key: ActionKey, apply: Apply) =>
    Effect.gen(function*() {
      const [row] = yield* actionToUpdate(key, lockActionRow)
      const plan = planUpdate(row, apply)
      if (plan._tag === "Done") return plan.outcome
      const [saved] = yield* sql<ActionRow>`UPDATE actions SET ${sql.update(plan.columns)}
        WHERE id = ${plan.row.id} RETURNING ${sql.literal(actionColumnNameList)}`
      if (saved === undefined) return yield* Effect.dieMessage("an updated action row was not returned")
      yield* notices.within(sql, [{ action: key, kind: "updated" }])
      return { _tag: "Updated", action: actionOfRow(saved, readJson) } as const
    })

  /**
   * Postgres: two statements (the read, and the update with its notice) instead of four (the locked read, the
   * update, the notice). The update applies only to the row version that was read (`xmin`, which every write of
   * the row replaces, and which an earlier write of the same batch leaves as the batch's own); when another
   * transaction's write came between, it changes nothing and the read and apply are done again, a few times, and
   * then the locked way.
   */
  const updateOptimistic = (key: ActionKey, apply: Apply) =>
    Effect.gen(function*() {
      for (let tries = 0; tries < optimisticTries; tries++) {
        const [row] = yield* actionToUpdate(key, noLock)
        const plan = planUpdate(row, apply)
        if (plan._tag === "Done") return plan.outcome
        const [saved] = yield* sql<ActionRow>`WITH saved AS (UPDATE actions SET ${sql.update(plan.columns)}
          WHERE id = ${plan.row.id} AND xmin = ${plan.row.row_version ?? null}::xid RETURNING ${sql.literal(actionColumnNameList)})
          SELECT saved.* ${notices.column(sql, { action: key, kind: "updated" })} FROM saved`
        if (saved !== undefined) return { _tag: "Updated", action: actionOfRow(saved, readJson) } as const
      }
      // A transaction of its own when outside one (see `group`); inside a batch's, a savepoint.
      return yield* sql.withTransaction(updateLocked(key, apply))
    })

  const one = sql.onDialectOrElse({ pg: () => updateOptimistic, orElse: () => updateLocked })

  /** The actions of `keys` (each once) as `actionToUpdate` reads them, unlocked: one statement. */
  const actionsToUpdate = (keys: ReadonlyArray<ActionKey>) =>
    sql<RowToUpdate>`${prepared} SELECT ${toUpdateColumns} ${rowVersion}
      FROM json_to_recordset(${
      JSON.stringify(keys.map((key) => ({ ...key.run, run_name: key.run.name, name: key.name })))
    }::json) AS k (project text, domain text, run_name text, name text)
      JOIN actions a ON a.project = k.project AND a.domain = k.domain AND a.run_name = k.run_name AND a.name = k.name
      JOIN runs r ON r.id = a.run_id ${rootJoin}`

  /** An action read by `many`: as stored, and as its updates so far have left it. */
  interface Slot {
    readonly row: RowToUpdate
    readonly stored: ActionRecord
    current: ActionRecord
  }

  /** A row of the statement that writes many actions' state columns: the columns that changed, and a bit for each. */
  const stateRow = (slot: Slot, columns: Record<string, unknown>) => {
    let mask = 0
    const row: Record<string, unknown> = { id: slot.row.id, row_version: slot.row.row_version ?? null }
    for (const [name, value] of Object.entries(columns)) {
      mask |= stateBits.get(name)!
      row[name] = value
    }
    row.mask = mask
    return row
  }

  /**
   * Postgres, the updates of one batch (see WriteGroup): one statement reads every action they name, `apply` runs
   * for each update in turn on what the updates before it made of its action (and of its run's root, when that is
   * one of them), and one statement writes each changed action once, with the notices of the updates that changed
   * something. Each write is of the row version read; when another transaction wrote one since, that statement
   * fails, whole, and the batch runs its writes again one by one.
   */
  const many = (updates: ReadonlyArray<ActionUpdate>): Effect.Effect<ReadonlyArray<UpdateOutcome>, SqlError> =>
    Effect.gen(function*() {
      const keys = new Map(updates.map((update) => [actionKeyText(update.key), update.key]))
      const slots = new Map<string, Slot>()
      for (const row of yield* actionsToUpdate(Array.from(keys.values()))) {
        const stored = actionOfRow(row, readJson)
        slots.set(actionKeyText(stored.key), { row, stored, current: stored })
      }
      const changes: Array<Change> = []
      const outcomes = updates.map(({ apply, key }): UpdateOutcome => {
        const slot = slots.get(actionKeyText(key))
        if (slot === undefined) return { _tag: "Missing" }
        const root = slots.get(actionKeyText({ run: key.run, name: slot.row.root_action_name }))
        const rootPhase = (root?.current.phase ?? slot.row.root_phase ?? slot.current.phase) as ActionPhase
        const next = apply(slot.current, { rootPhase })
        if (next === undefined) return { _tag: "Unchanged", action: slot.current }
        if (Object.keys(changedColumns(actionFieldsRow(slot.current), actionFieldsRow(next))).length === 0) {
          return { _tag: "Updated", action: slot.current }
        }
        slot.current = next
        changes.push({ action: key, kind: "updated" })
        return { _tag: "Updated", action: next }
      })

      const states: Array<Record<string, unknown>> = []
      const others: Array<Statement.Fragment> = []
      for (const slot of slots.values()) {
        if (slot.current === slot.stored) continue
        const columns = changedColumns(actionFieldsRow(slot.stored), actionFieldsRow(slot.current))
        const names = Object.keys(columns)
        if (names.length === 0) continue
        if (names.every((name) => stateBits.has(name))) {
          states.push(stateRow(slot, columns))
        } else {
          others.push(sql`, ${sql.literal(`other${others.length}`)} AS (UPDATE actions SET ${sql.update(columns)}
            WHERE id = ${slot.row.id} AND xmin = ${slot.row.row_version ?? null}::xid RETURNING id)`)
        }
      }
      const expected = states.length + others.length
      // What the updates made of an action is what it was before them (or they made nothing of it): no write.
      if (expected === 0) return outcomes
      const written = sql.literal(
        ["SELECT id FROM saved", ...others.map((_, i) => `SELECT id FROM other${i}`)].join(" UNION ALL ")
      )
      // Fewer rows written than expected fails the statement (a cast of text that is no number), so that none is.
      yield* sql`WITH v AS (SELECT * FROM json_to_recordset(${JSON.stringify(states)}::json)
          AS v (id bigint, row_version text, mask integer, ${sql.literal(stateRecordType)})),
        saved AS (UPDATE actions a SET ${sql.literal(setStateColumns)} FROM v
          WHERE a.id = v.id AND a.xmin = v.row_version::xid RETURNING a.id) ${sql.join("", false)(others)},
        written AS (${written})
        SELECT CASE WHEN count(*) = ${expected} THEN count(*) ELSE
          ('actions written by another transaction since they were read: ' || (${expected} - count(*)))::bigint
        END AS written ${notices.columnOfAll(sql, changes)} FROM written`
      return outcomes
    })

  /** The updates of a batch together, for Postgres. Both ways write with one statement (the locked way in a
   * transaction of its own), so a batch of nothing but updates needs no transaction around them. */
  const group: WriteGroup<ActionUpdate, UpdateOutcome> = {
    one: (update) => one(update.key, update.apply),
    many,
    atomic: true
  }

  return { one, group }
}
