import type { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import { createHash } from "node:crypto"
import type { RebuildAttempt, StoredEvent } from "../../domain/Events.js"
import { type ActionKey, actionKeyText, type RunKey, runKeyText } from "../../domain/Ids.js"
import { phaseColumn } from "../../domain/Phase.js"
import type { makeAttempts } from "./SqlAttempts.js"
import { detailsOf, detailsText, noDetails } from "./SqlEventFacts.js"
import { bytes, type JsonReader, payloadFrom } from "./SqlPayloads.js"
import { dateOf, iso, phaseOfColumn } from "./SqlRows.js"

/** The event log (`action_events`) and the attempts rebuilt from it. */

interface EventRow {
  readonly project: string
  readonly domain: string
  readonly run_name: string
  readonly action_name: string
  readonly attempt: number
  readonly phase: string
  readonly version: number
  readonly reported_time: string | null
  readonly updated_time: string | null
  readonly event_pb: Uint8Array
  readonly facts: string | null
}

/** The events to read of one action: those of the given attempt numbers, or all of them. */
export interface EventSelection {
  readonly key: ActionKey
  readonly attempts: ReadonlyArray<number> | undefined
}

// SQLite binds at most 32766 parameters per statement (an event row takes 13) and nests at most 1000 ORs.
const rowsPerInsert = 1000
const clausesPerQuery = 200

const optionalIso = (date: Date | undefined) => (date === undefined ? null : iso(date))
const optionalDate = (text: string | null) => (text === null ? undefined : dateOf(text))

/** A stable 64-bit advisory lock id per action, the same in every replica. */
const lockId = (key: ActionKey): bigint =>
  createHash("sha256").update(`runs/action/${actionKeyText(key)}`).digest().readBigInt64BE(0)

const groupBy = <A, K>(items: ReadonlyArray<A>, keyOf: (item: A) => K): Map<K, Array<A>> => {
  const groups = new Map<K, Array<A>>()
  for (const item of items) {
    const group = groups.get(keyOf(item))
    if (group === undefined) groups.set(keyOf(item), [item])
    else group.push(item)
  }
  return groups
}

const chunks = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size))

export const makeEvents = (
  sql: SqlClient.SqlClient,
  readJson: JsonReader,
  attempts: ReturnType<typeof makeAttempts>
) => {
  /**
   * On Postgres, serialises until commit the transactions that write these actions' events or attempts (every
   * writer of attempts takes it): without it, an event and its action committed at once would each miss the
   * other, and two batches for one attempt would each rebuild it without the other's events. Taken in one
   * order, so never a deadlock. SQLite runs one writer at a time anyway.
   */
  const lock = (keys: ReadonlyArray<ActionKey>): Effect.Effect<void, SqlError> =>
    sql.onDialectOrElse({
      pg: () => {
        const ids = Array.from(new Set(keys.map((key) => lockId(key)))).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
        return ids.length === 0
          ? Effect.void
          : Effect.asVoid(sql`SELECT pg_advisory_xact_lock(id) FROM unnest(${`{${ids.join(",")}}`}::bigint[]) AS id`)
      },
      orElse: () => Effect.void
    })

  /** Inserts the events not stored yet; the first one stored under a key wins. */
  const append = (
    events: ReadonlyArray<StoredEvent>,
    orgOf: (run: RunKey) => string,
    now: Date
  ): Effect.Effect<void, SqlError> => {
    const stamp = iso(now)
    return Effect.forEach(chunks(events, rowsPerInsert), (chunk) =>
      sql`INSERT INTO action_events ${
        sql.insert(chunk.map((event) => ({
          org: orgOf(event.key.run),
          project: event.key.run.project,
          domain: event.key.run.domain,
          run_name: event.key.run.name,
          action_name: event.key.name,
          attempt: event.attempt,
          phase: phaseColumn(event.phase),
          version: event.version,
          reported_time: optionalIso(event.reportedTime),
          updated_time: optionalIso(event.updatedTime),
          // The binary event only, as the original keeps it (`event` stays NULL: rendering JSON no one reads
          // was a fifth of the cost of a batch).
          event_pb: bytes(event.raw.binary),
          facts: detailsText(event),
          created_at: stamp
        })))
      } ON CONFLICT (project, domain, run_name, action_name, attempt, phase, version) DO NOTHING`, { discard: true })
  }

  const eventKey = (key: ActionKey, attempt: number, phase: string, version: number) =>
    `${actionKeyText(key)}/${attempt}/${phase}/${version}`

  /** A stored event; `known` is the one just given with its key and bytes, if any (its facts are not read again). */
  const eventOf = (row: EventRow, known: ReadonlyMap<string, StoredEvent>): StoredEvent => {
    const key = { run: { project: row.project, domain: row.domain, name: row.run_name }, name: row.action_name }
    const given = known.get(eventKey(key, row.attempt, row.phase, row.version))
    if (given !== undefined && Buffer.compare(given.raw.binary, row.event_pb) === 0) return given
    return {
      key,
      attempt: row.attempt,
      phase: phaseOfColumn(row.phase),
      version: row.version,
      reportedTime: optionalDate(row.reported_time),
      updatedTime: optionalDate(row.updated_time),
      // NULL only for an event a replica of an earlier version stored after this one filled the log at start-up.
      ...(row.facts === null ? noDetails : detailsOf(row.facts)),
      raw: payloadFrom(null, row.event_pb, readJson)!
    }
  }

  /** Every stored event of the selected actions and attempts, in no particular order. */
  const read = (
    selections: ReadonlyArray<EventSelection>,
    known: ReadonlyMap<string, StoredEvent> = new Map()
  ): Effect.Effect<Array<StoredEvent>, SqlError> =>
    Effect.map(
      Effect.forEach(chunks(selections, clausesPerQuery), (chunk) =>
        sql<EventRow>`SELECT project, domain, run_name, action_name, attempt, phase, version, reported_time,
          updated_time, event_pb, facts FROM action_events WHERE ${
          sql.or(chunk.map(({ attempts: numbers, key }) => {
            const ofAttempts = numbers === undefined ? sql.literal("") : sql`AND attempt IN ${sql.in(numbers)}`
            return sql`(project = ${key.run.project} AND domain = ${key.run.domain} AND run_name = ${key.run.name}
              AND action_name = ${key.name} ${ofAttempts})`
          }))
        }`),
      (results) => results.flat().map((row) => eventOf(row, known))
    )

  /** Every attempt that `events` (all of one action) hold, rebuilt once each. */
  const rebuildAttempts = (actionId: number, events: ReadonlyArray<StoredEvent>, rebuild: RebuildAttempt) => {
    const byAttempt = groupBy(events, (event) => event.attempt)
    return Array.from(byAttempt.values(), (ofAttempt) => ({ actionId, attempt: rebuild(ofAttempt) }))
  }

  /** Rebuilds every attempt of actions just recorded from the events that came before them: two statements. */
  const rebuildActions = (
    actions: ReadonlyArray<{ readonly key: ActionKey; readonly actionId: number; readonly rebuild: RebuildAttempt }>,
    now: Date
  ) =>
    Effect.flatMap(read(actions.map(({ key }) => ({ key, attempts: undefined }))), (stored) => {
      const byAction = groupBy(stored, (event) => actionKeyText(event.key))
      return attempts.writeAll(
        actions.flatMap(({ actionId, key, rebuild }) =>
          rebuildAttempts(actionId, byAction.get(actionKeyText(key)) ?? [], rebuild)
        ),
        now
      )
    })

  /** `RunStore.recordEvents` within a transaction: a fixed number of statements for any batch. */
  const record = (list: ReadonlyArray<StoredEvent>, rebuild: RebuildAttempt, now: Date) =>
    Effect.gen(function*() {
      const touched = new Map<string, { readonly key: ActionKey; readonly attempts: Set<number> }>()
      for (const event of list) {
        const text = actionKeyText(event.key)
        const entry = touched.get(text) ?? { key: event.key, attempts: new Set<number>() }
        entry.attempts.add(event.attempt)
        touched.set(text, entry)
      }
      const keys = Array.from(touched.values(), (entry) => entry.key)
      if (keys.length === 0) return keys
      yield* lock(keys)
      const runKeys = Array.from(new Map(keys.map((key) => [runKeyText(key.run), key.run])).values())
      const runs = (yield* Effect.forEach(chunks(runKeys, clausesPerQuery), (chunk) =>
        sql<{ id: number; org: string; project: string; domain: string; name: string }>`
          SELECT id, org, project, domain, name FROM runs WHERE ${
          sql.or(chunk.map((run) => sql`(project = ${run.project} AND domain = ${run.domain} AND name = ${run.name})`))
        }`)).flat()
      const runOf = new Map(runs.map((run) => [runKeyText(run), run]))
      yield* append(list, (run) => runOf.get(runKeyText(run))?.org ?? "", now)
      const actions = runs.length === 0 ? [] : yield* sql<{ id: number; run_id: number; name: string }>`
        SELECT id, run_id, name FROM actions WHERE run_id IN ${sql.in(runs.map((run) => run.id))}
        AND name IN ${sql.in(Array.from(new Set(keys.map((key) => key.name))))}`
      const actionIds = new Map(actions.map((action) => [`${action.run_id}/${action.name}`, action.id]))
      const existing = Array.from(touched.values()).flatMap((entry) => {
        const id = actionIds.get(`${runOf.get(runKeyText(entry.key.run))?.id}/${entry.key.name}`)
        return id === undefined ? [] : [{ ...entry, id }]
      })
      // The batch's events, by key (the first of a key is the one stored, unless one was stored before).
      const given = new Map<string, StoredEvent>()
      for (const event of list) {
        const key = eventKey(event.key, event.attempt, phaseColumn(event.phase), event.version)
        if (!given.has(key)) given.set(key, event)
      }
      const stored = yield* read(existing.map((entry) => ({ key: entry.key, attempts: [...entry.attempts] })), given)
      const byAction = groupBy(stored, (event) => actionKeyText(event.key))
      yield* attempts.writeAll(
        existing.flatMap((entry) => rebuildAttempts(entry.id, byAction.get(actionKeyText(entry.key)) ?? [], rebuild)),
        now
      )
      return keys
    })

  return { lock, rebuildActions, record }
}
