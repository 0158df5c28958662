import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Duration, Effect, Layer } from "effect"
import type { ActionKey } from "../../domain/Ids.js"
import {
  type Claim,
  claimOrder,
  type DispatchKind,
  type DispatchRequest,
  type DispatchState,
  Outbox,
  OutboxUnavailable
} from "../../ports/Outbox.js"
import { dateOf, iso } from "./SqlRows.js"
import { refail } from "./SqlStoreErrors.js"
import { withSpanWhenTraced } from "../../ports/Spans.js"

interface OutboxRow {
  readonly id: number
  readonly project: string
  readonly domain: string
  readonly run_name: string
  readonly action_name: string
  readonly kind: string
  readonly reason: string | null
  readonly state: string
  readonly attempts: number
  readonly next_attempt_at: string
  readonly last_error: string | null
  readonly created_at: string
  readonly updated_at: string
  readonly delivered_at: string | null
  readonly traceparent: string | null
}

const requestOfRow = (row: OutboxRow): DispatchRequest => ({
  id: row.id,
  action: { run: { project: row.project, domain: row.domain, name: row.run_name }, name: row.action_name },
  kind: row.kind === "abort" ? "abort" : "enqueue",
  reason: row.reason ?? undefined,
  state: row.state as DispatchState,
  attempts: row.attempts,
  nextAttemptAt: dateOf(row.next_attempt_at),
  lastError: row.last_error ?? undefined,
  createdAt: dateOf(row.created_at),
  updatedAt: dateOf(row.updated_at),
  deliveredAt: row.delivered_at === null ? undefined : dateOf(row.delivered_at),
  traceparent: row.traceparent ?? undefined
})

/** The row of a pending request, due at once; without a trace, the column is left out (NULL), as before it was. */
export const requestRow = (
  action: ActionKey,
  kind: DispatchKind,
  reason: string | undefined,
  at: Date,
  traceparent: string | undefined
) => ({
  project: action.run.project,
  domain: action.run.domain,
  run_name: action.run.name,
  action_name: action.name,
  kind,
  reason: reason ?? null,
  state: "pending",
  attempts: 0,
  next_attempt_at: iso(at),
  created_at: iso(at),
  updated_at: iso(at),
  ...(traceparent === undefined ? {} : { traceparent })
})

/** Writes a pending request, due at once; SqlRunStore calls it inside the transaction that causes it. */
export const insertRequest = (
  sql: SqlClient.SqlClient,
  action: ActionKey,
  kind: DispatchKind,
  reason: string | undefined,
  at: Date,
  traceparent: string | undefined
) => sql`INSERT INTO outbox ${sql.insert(requestRow(action, kind, reason, at, traceparent))}`

/** Claims grouped by the end of their lease, as the text it is stored as. */
const leases = (claims: ReadonlyArray<Claim>): Array<[string, Array<Claim>]> => {
  const groups = new Map<string, Array<Claim>>()
  for (const claim of claims) {
    const until = iso(claim.until)
    const group = groups.get(until)
    if (group === undefined) groups.set(until, [claim])
    else group.push(claim)
  }
  return [...groups]
}

/*
 * Each method is one statement (`delivered`: one per lease among its claims). A claim is a lease
 * (`claimed_until`), so the delivery itself runs outside any transaction; the outcome is written only while the
 * lease it was claimed with still holds. On Postgres the claim skips rows another worker is claiming at that moment.
 */
export const make: Effect.Effect<Outbox["Type"], never, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const skipLocked = sql.literal(sql.onDialectOrElse({ pg: () => "FOR UPDATE SKIP LOCKED", orElse: () => "" }))

  const run = <A>(name: string, effect: Effect.Effect<A, SqlError>): Effect.Effect<A, OutboxUnavailable> =>
    refail(effect).pipe(
      Effect.mapError((error) => new OutboxUnavailable({ reason: error.reason })),
      withSpanWhenTraced(`SqlOutbox.${name}`, { captureStackTrace: false })
    )

  const settle = (name: string, claim: Claim, changes: Record<string, string | null>) =>
    run(
      name,
      sql<{ id: number }>`UPDATE outbox SET ${sql.update({ ...changes, claimed_until: null })}
        WHERE id = ${claim.request.id} AND state = 'pending' AND claimed_until = ${iso(claim.until)}
        RETURNING id`
    ).pipe(Effect.map((rows) => rows.length > 0))

  return Outbox.of({
    claim: (now, { lease, limit }) => {
      const until = new Date(now.getTime() + Duration.toMillis(lease))
      return run(
        "claim",
        sql<OutboxRow>`UPDATE outbox SET claimed_until = ${iso(until)}, attempts = attempts + 1,
          updated_at = ${iso(now)}
          WHERE id IN (
            SELECT o.id FROM outbox o
            WHERE o.state = 'pending' AND o.next_attempt_at <= ${iso(now)}
              AND (o.claimed_until IS NULL OR o.claimed_until <= ${iso(now)})
              AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.project = o.project AND p.domain = o.domain
                AND p.run_name = o.run_name AND p.state = 'pending' AND p.id < o.id)
            ORDER BY o.next_attempt_at, o.id LIMIT ${limit} ${skipLocked})
          RETURNING *`
      ).pipe(
        Effect.map((rows) =>
          rows.map((row) => requestOfRow(row)).sort(claimOrder).map((request): Claim => ({ request, until }))
        )
      )
    },
    // One statement for the claims of one lease (a worker's claims of one round share it), not one per claim.
    delivered: (claims, now) =>
      Effect.map(
        Effect.forEach(leases(claims), ([until, held]) =>
          run(
            "delivered",
            sql<{ id: number }>`UPDATE outbox SET ${
              sql.update({ state: "delivered", delivered_at: iso(now), updated_at: iso(now), claimed_until: null })
            } WHERE id IN ${sql.in(held.map((claim) => claim.request.id))} AND state = 'pending'
              AND claimed_until = ${until} RETURNING id`
          ).pipe(Effect.map((rows) => {
            const ids = new Set(rows.map((row) => Number(row.id)))
            return held.filter((claim) => ids.has(claim.request.id))
          }))),
        (recorded) => {
          const held = new Set(recorded.flat())
          return claims.filter((claim) => held.has(claim))
        }
      ),
    retryAt: (claim, at, error, now) =>
      settle("retryAt", claim, { next_attempt_at: iso(at), last_error: error, updated_at: iso(now) }),
    failed: (claim, error, now) => settle("failed", claim, { state: "failed", last_error: error, updated_at: iso(now) }),
    release: (claim) => Effect.asVoid(settle("release", claim, {})),
    backlog: run(
      "backlog",
      sql<{ pending: number; oldest: string | null }>`SELECT count(*) AS pending, min(created_at) AS oldest
        FROM outbox WHERE state = 'pending'`
    ).pipe(Effect.map(([row]) => ({
      pending: Number(row?.pending ?? 0),
      oldest: row?.oldest === null || row?.oldest === undefined ? undefined : dateOf(row.oldest)
    }))),
    list: (key) =>
      run(
        "list",
        sql<OutboxRow>`SELECT * FROM outbox WHERE project = ${key.project} AND domain = ${key.domain}
          AND run_name = ${key.name} ORDER BY id`
      ).pipe(Effect.map((rows) => rows.map((row) => requestOfRow(row))))
  })
})

export const layer: Layer.Layer<Outbox, never, SqlClient.SqlClient> = Layer.effect(Outbox, make)
