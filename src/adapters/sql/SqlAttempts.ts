import type { SqlClient, Statement } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import { phaseColumn } from "../../domain/Phase.js"
import type { AttemptRecord } from "../../domain/Records.js"
import { bytes, frameRepeated, jsonArray, type JsonReader, payloadFrom, payloadList } from "./SqlPayloads.js"
import { dateOf, iso, phaseOfColumn } from "./SqlRows.js"

/** `action_attempts` with their `phase_transitions` and `cluster_events`, for one action (by its row id). */

interface AttemptRow {
  readonly id: number
  readonly attempt_number: number
  readonly phase: string
  readonly start_time: string | null
  readonly end_time: string | null
  readonly outputs: unknown
  readonly outputs_pb: Uint8Array | null
  readonly log_info: unknown
  readonly log_info_pb: Uint8Array | null
  readonly log_context: unknown
  readonly log_context_pb: Uint8Array | null
  readonly error_info: unknown
  readonly error_info_pb: Uint8Array | null
  readonly cluster: string | null
  readonly cache_status: number
  readonly logs_available: number
}

interface TransitionRow {
  readonly attempt_id: number
  readonly phase: string
  readonly start_time: string
  readonly end_time: string | null
}

/** A phase transition (kind 0) or a cluster event (kind 1). */
interface PartRow {
  readonly kind: number
  readonly attempt_id: number
  readonly text: string
  readonly at: string
  readonly end_time: string | null
}

interface ClusterEventRow {
  readonly attempt_id: number
  readonly occurred_at: string
  readonly message: string
}

const optionalDate = (text: string | null) => (text === null ? undefined : dateOf(text))
const optionalIso = (date: Date | undefined) => (date === undefined ? null : iso(date))

const payloadColumns = (name: string, payload: AttemptRecord["outputs"]) => ({
  [name]: payload?.json ?? null,
  [`${name}_pb`]: payload === undefined ? null : bytes(payload.binary)
})

export const makeAttempts = (sql: SqlClient.SqlClient, readJson: JsonReader) => {
  const attemptOf = (
    row: AttemptRow,
    transitions: ReadonlyArray<TransitionRow>,
    events: ReadonlyArray<ClusterEventRow>
  ): AttemptRecord => ({
    attempt: row.attempt_number,
    phase: phaseOfColumn(row.phase),
    startTime: optionalDate(row.start_time),
    endTime: optionalDate(row.end_time),
    outputs: payloadFrom(row.outputs, row.outputs_pb, readJson),
    logInfo: payloadList(row.log_info, row.log_info_pb),
    logContext: payloadFrom(row.log_context, row.log_context_pb, readJson),
    errorInfo: payloadFrom(row.error_info, row.error_info_pb, readJson),
    cluster: row.cluster ?? undefined,
    cacheStatus: row.cache_status,
    logsAvailable: row.logs_available !== 0,
    phaseTransitions: transitions.filter((t) => t.attempt_id === row.id).map((t) => ({
      phase: phaseOfColumn(t.phase),
      startTime: dateOf(t.start_time),
      endTime: optionalDate(t.end_time)
    })),
    clusterEvents: events.filter((e) => e.attempt_id === row.id).map((e) => ({
      occurredAt: dateOf(e.occurred_at),
      message: e.message
    }))
  })

  /** The attempts of an action by number; only the latest when `latestOnly`. */
  const read = (actionId: number, latestOnly = false): Effect.Effect<Array<AttemptRecord>, SqlError> =>
    Effect.gen(function*() {
      const rows = yield* sql<AttemptRow>`SELECT * FROM action_attempts WHERE action_id = ${actionId}
        ORDER BY attempt_number ${sql.literal(latestOnly ? "DESC LIMIT 1" : "ASC")}`
      if (rows.length === 0) return []
      const ids = rows.map((row) => row.id)
      // Transitions and cluster events in one statement (kind 0 and 1), each in order.
      const parts = yield* sql<PartRow>`SELECT 0 AS kind, attempt_id, seq, id, phase AS text, start_time AS at, end_time
        FROM phase_transitions WHERE attempt_id IN ${sql.in(ids)}
        UNION ALL SELECT 1 AS kind, attempt_id, seq, id, message AS text, occurred_at AS at, NULL AS end_time
        FROM cluster_events WHERE attempt_id IN ${sql.in(ids)}
        ORDER BY kind, attempt_id, seq, id`
      const transitions: Array<TransitionRow> = []
      const events: Array<ClusterEventRow> = []
      for (const part of parts) {
        if (Number(part.kind) === 0) {
          transitions.push({ attempt_id: part.attempt_id, phase: part.text, start_time: part.at, end_time: part.end_time })
        } else {
          events.push({ attempt_id: part.attempt_id, occurred_at: part.at, message: part.text })
        }
      }
      return rows.map((row) => attemptOf(row, transitions, events))
    })

  /** Inserts rows in statements of at most ~30000 parameters (SQLite binds at most 32766). */
  const insertRows = <A extends object>(
    table: string,
    rows: ReadonlyArray<Record<string, unknown>>,
    suffix: Statement.Fragment = sql.literal("")
  ): Effect.Effect<Array<A>, SqlError> => {
    const size = Math.max(1, Math.floor(30000 / Math.max(1, Object.keys(rows[0] ?? {}).length)))
    const chunks = Array.from({ length: Math.ceil(rows.length / size) }, (_, i) => rows.slice(i * size, (i + 1) * size))
    return Effect.map(
      Effect.forEach(chunks, (chunk) => sql<A>`INSERT INTO ${sql(table)} ${sql.insert(chunk)} ${suffix}`),
      (results) => results.flat()
    )
  }

  /**
   * Replaces each attempt with its number (its row updated in place, its transitions and events rewritten),
   * in a fixed number of statements however many attempts are given; of two with one number, the last wins.
   */
  const writeAll = (
    given: ReadonlyArray<{ readonly actionId: number; readonly attempt: AttemptRecord }>,
    now: Date
  ): Effect.Effect<void, SqlError> =>
    Effect.gen(function*() {
      const last = Array.from(new Map(given.map((item) => [`${item.actionId}/${item.attempt.attempt}`, item])).values())
      if (last.length === 0) return
      const stamp = iso(now)
      const rows = last.map(({ actionId, attempt }) => ({
        action_id: actionId,
        attempt_number: attempt.attempt,
        phase: phaseColumn(attempt.phase),
        start_time: optionalIso(attempt.startTime),
        end_time: optionalIso(attempt.endTime),
        ...payloadColumns("outputs", attempt.outputs),
        log_info: jsonArray(attempt.logInfo),
        log_info_pb: frameRepeated(attempt.logInfo),
        ...payloadColumns("log_context", attempt.logContext),
        ...payloadColumns("error_info", attempt.errorInfo),
        cluster: attempt.cluster ?? null,
        cache_status: attempt.cacheStatus,
        logs_available: attempt.logsAvailable ? 1 : 0,
        updated_at: stamp,
        created_at: stamp
      }))
      const changed = Object.keys(rows[0]!).filter((column) =>
        column !== "action_id" && column !== "attempt_number" && column !== "created_at"
      )
      const saved = yield* insertRows<{ id: number; action_id: number; attempt_number: number }>(
        "action_attempts",
        rows,
        sql`ON CONFLICT (action_id, attempt_number) DO UPDATE SET
          ${sql.csv(changed.map((column) => sql`${sql(column)} = excluded.${sql(column)}`))}
          RETURNING id, action_id, attempt_number`
      )
      const idOf = new Map(saved.map((row) => [`${row.action_id}/${row.attempt_number}`, row.id]))
      const withIds = last.map((item) => ({ ...item, id: idOf.get(`${item.actionId}/${item.attempt.attempt}`)! }))
      const ids = withIds.map((item) => item.id)
      yield* sql`DELETE FROM phase_transitions WHERE attempt_id IN ${sql.in(ids)}`
      yield* sql`DELETE FROM cluster_events WHERE attempt_id IN ${sql.in(ids)}`
      yield* insertRows(
        "phase_transitions",
        withIds.flatMap(({ attempt, id }) =>
          attempt.phaseTransitions.map((transition, seq) => ({
            attempt_id: id,
            seq,
            phase: phaseColumn(transition.phase),
            start_time: iso(transition.startTime),
            end_time: optionalIso(transition.endTime),
            created_at: stamp
          }))
        )
      )
      yield* insertRows(
        "cluster_events",
        withIds.flatMap(({ attempt, id }) =>
          attempt.clusterEvents.map((event, seq) => ({
            attempt_id: id,
            seq,
            occurred_at: iso(event.occurredAt),
            message: event.message,
            created_at: stamp
          }))
        )
      )
    })

  /** Replaces the attempt with this number. */
  const write = (actionId: number, attempt: AttemptRecord, now: Date): Effect.Effect<void, SqlError> =>
    writeAll([{ actionId, attempt }], now)

  return { read, write, writeAll }
}
