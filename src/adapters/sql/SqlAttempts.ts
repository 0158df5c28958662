import type { SqlClient, Statement } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import { phaseColumn } from "../../domain/Phase.js"
import type { AttemptRecord } from "../../domain/Records.js"
import { bytes, frameRepeated, jsonArray, type JsonReader, payloadFrom, payloadList } from "./SqlPayloads.js"
import { dateOf, iso, phaseOfColumn } from "./SqlRows.js"

// `action_attempts` with their `phase_transitions` and `cluster_events`, for one action (by its row id).

/**
 * An attempt as one element of the JSON array `column` reads: its columns, then its phase transitions
 * and its cluster events, each in order. Binary columns come as hex (JSON has no bytes), JSON columns as text.
 */
type AttemptJson = [
  attempt_number: number,
  phase: string,
  start_time: string | null,
  end_time: string | null,
  cluster: string | null,
  cache_status: number,
  logs_available: number,
  outputs_pb: string | null,
  outputs: string | null,
  log_info_pb: string | null,
  log_info: string | null,
  log_context_pb: string | null,
  log_context: string | null,
  error_info_pb: string | null,
  error_info: string | null,
  transitions: ReadonlyArray<[phase: string, start_time: string, end_time: string | null]>,
  events: ReadonlyArray<[occurred_at: string, message: string]>
]

/** How each database builds JSON: SQLite's JSON functions, Postgres's `json_*` ones. */
interface JsonDialect {
  readonly list: (item: string, order: string) => string
  readonly tuple: (items: ReadonlyArray<string>) => string
  readonly nested: (subquery: string) => string
  readonly hex: (column: string) => string
  readonly text: (column: string) => string
}

const sqliteJson: JsonDialect = {
  list: (item, order) => `json_group_array(${item} ORDER BY ${order})`,
  tuple: (items) => `json_array(${items.join(", ")})`,
  // json() marks a subquery's text as JSON, so it nests as an array and not as a string.
  nested: (subquery) => `json((${subquery}))`,
  hex: (column) => `CASE WHEN ${column} IS NULL THEN NULL ELSE hex(${column}) END`,
  text: (column) => column
}

const pgJson: JsonDialect = {
  list: (item, order) => `COALESCE(json_agg(${item} ORDER BY ${order}), '[]'::json)`,
  tuple: (items) => `json_build_array(${items.join(", ")})`,
  nested: (subquery) => `(${subquery})`,
  hex: (column) => `encode(${column}, 'hex')`,
  // JSONB would nest as a value; as text it reads as stored.
  text: (column) => `${column}::text`
}

/** The attempts of the action aliased `action`, in order, as one JSON array (see `AttemptJson`). */
const attemptsJson = (d: JsonDialect, action: string): string => {
  const transitions = `SELECT ${d.list(d.tuple(["p.phase", "p.start_time", "p.end_time"]), "p.seq, p.id")}
    FROM phase_transitions p WHERE p.attempt_id = t.id`
  const events = `SELECT ${d.list(d.tuple(["e.occurred_at", "e.message"]), "e.seq, e.id")}
    FROM cluster_events e WHERE e.attempt_id = t.id`
  const payload = (name: string) => [d.hex(`t.${name}_pb`), d.text(`t.${name}`)]
  const attempt = d.tuple([
    "t.attempt_number", "t.phase", "t.start_time", "t.end_time", "t.cluster", "t.cache_status", "t.logs_available",
    ...payload("outputs"), ...payload("log_info"), ...payload("log_context"), ...payload("error_info"),
    d.nested(transitions), d.nested(events)
  ])
  return `(SELECT ${d.list(attempt, "t.attempt_number")} FROM action_attempts t WHERE t.action_id = ${action}.id)`
}

const optionalDate = (text: string | null) => (text === null ? undefined : dateOf(text))
const optionalIso = (date: Date | undefined) => (date === undefined ? null : iso(date))

const payloadColumns = (name: string, payload: AttemptRecord["outputs"]) => ({
  [name]: payload?.json ?? null,
  [`${name}_pb`]: payload === undefined ? null : bytes(payload.binary)
})

const binaryOfHex = (hex: string | null): Uint8Array | null => (hex === null ? null : Buffer.from(hex, "hex"))

export const makeAttempts = (sql: SqlClient.SqlClient, readJson: JsonReader) => {
  const dialect = sql.onDialectOrElse({ pg: () => pgJson, orElse: () => sqliteJson })

  /**
   * A column of the statement's action `action` (an alias): its attempts with their transitions and cluster
   * events, so that one statement reads an action or a run with its attempts (`parse` reads it).
   */
  const column = (action: string): Statement.Fragment => sql.literal(attemptsJson(dialect, action))

  const attemptOf = (item: AttemptJson): AttemptRecord => ({
    attempt: item[0],
    phase: phaseOfColumn(item[1]),
    startTime: optionalDate(item[2]),
    endTime: optionalDate(item[3]),
    cluster: item[4] ?? undefined,
    cacheStatus: item[5],
    logsAvailable: item[6] !== 0,
    outputs: payloadFrom(item[8], binaryOfHex(item[7]), readJson),
    logInfo: payloadList(item[10], binaryOfHex(item[9])),
    logContext: payloadFrom(item[12], binaryOfHex(item[11]), readJson),
    errorInfo: payloadFrom(item[14], binaryOfHex(item[13]), readJson),
    phaseTransitions: item[15].map(([phase, start, end]) => ({
      phase: phaseOfColumn(phase),
      startTime: dateOf(start),
      endTime: optionalDate(end)
    })),
    clusterEvents: item[16].map(([occurredAt, message]) => ({ occurredAt: dateOf(occurredAt), message }))
  })

  /** The attempts a `column` holds. */
  const parse = (value: unknown): Array<AttemptRecord> =>
    (JSON.parse(readJson(value)) as ReadonlyArray<AttemptJson>).map(attemptOf)

  /** The attempts of an action (by its row id), in order. */
  const read = (actionId: number): Effect.Effect<Array<AttemptRecord>, SqlError> =>
    Effect.map(
      sql<{ attempt_list: unknown }>`SELECT ${column("a")} AS attempt_list FROM actions a WHERE a.id = ${actionId}`,
      (rows) => (rows[0] === undefined ? [] : parse(rows[0].attempt_list))
    )

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

  return { column, parse, read, write, writeAll }
}
