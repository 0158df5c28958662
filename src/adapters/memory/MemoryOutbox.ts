import { Duration, Effect } from "effect"
import { type ActionKey, type RunKey, runKeyText } from "../../domain/Ids.js"
import { type Claim, claimOrder, type DispatchKind, type DispatchRequest, Outbox } from "../../ports/Outbox.js"

/** A request and its claim; the request is replaced, never changed in place. */
export interface OutboxRow {
  request: DispatchRequest
  claimedUntil: Date | undefined
}

/** The outbox's rows in memory, in the order they were written; the memory RunStore appends to it. */
export interface MemoryOutboxTable {
  readonly append: (
    action: ActionKey,
    kind: DispatchKind,
    reason: string | undefined,
    at: Date,
    traceparent: string | undefined
  ) => void
  /** Removes every request of the run (the run was deleted). */
  readonly removeRun: (run: RunKey) => void
  readonly rows: ReadonlyArray<OutboxRow>
}

export const makeTable = (): MemoryOutboxTable => {
  const rows: Array<OutboxRow> = []
  let nextId = 1
  return {
    rows,
    removeRun: (run) => {
      const text = runKeyText(run)
      for (let i = rows.length - 1; i >= 0; i--) {
        if (runKeyText(rows[i]!.request.action.run) === text) rows.splice(i, 1)
      }
    },
    append: (action, kind, reason, at, traceparent) => {
      rows.push({
        request: {
          id: nextId++,
          action,
          kind,
          reason,
          state: "pending",
          attempts: 0,
          nextAttemptAt: at,
          lastError: undefined,
          createdAt: at,
          updatedAt: at,
          deliveredAt: undefined,
          traceparent
        },
        claimedUntil: undefined
      })
    }
  }
}

const notAfter = (a: Date, b: Date) => a.getTime() <= b.getTime()

/** The Outbox over a table the memory RunStore writes; every method is one synchronous step, so atomic. */
export const makeOutbox = (table: MemoryOutboxTable): Outbox["Type"] => {
  const rows = table.rows
  const holding = (claim: Claim) => {
    const row = rows.find((candidate) => candidate.request.id === claim.request.id)
    return row !== undefined && row.request.state === "pending" && row.claimedUntil !== undefined &&
        row.claimedUntil.getTime() === claim.until.getTime()
      ? row
      : undefined
  }
  const settle = (claim: Claim, change: (request: DispatchRequest) => DispatchRequest) =>
    Effect.sync(() => {
      const row = holding(claim)
      if (row === undefined) return false
      row.request = change(row.request)
      row.claimedUntil = undefined
      return true
    })

  return Outbox.of({
    claim: (now, { lease, limit }) =>
      Effect.sync(() => {
        const oldestPending = new Map<string, number>()
        for (const { request } of rows) {
          const run = runKeyText(request.action.run)
          if (request.state === "pending" && !oldestPending.has(run)) oldestPending.set(run, request.id)
        }
        const until = new Date(now.getTime() + Duration.toMillis(lease))
        const chosen = rows.filter((row) =>
          row.request.state === "pending" && notAfter(row.request.nextAttemptAt, now) &&
          (row.claimedUntil === undefined || notAfter(row.claimedUntil, now)) &&
          oldestPending.get(runKeyText(row.request.action.run)) === row.request.id
        ).sort((a, b) => claimOrder(a.request, b.request)).slice(0, limit)
        return chosen.map((row): Claim => {
          row.request = { ...row.request, attempts: row.request.attempts + 1, updatedAt: now }
          row.claimedUntil = until
          return { request: row.request, until }
        })
      }),
    delivered: (claims, now) =>
      Effect.filter(claims, (claim) =>
        settle(claim, (request) => ({ ...request, state: "delivered", deliveredAt: now, updatedAt: now }))),
    retryAt: (claim, at, error, now) =>
      settle(claim, (request) => ({ ...request, nextAttemptAt: at, lastError: error, updatedAt: now })),
    failed: (claim, error, now) =>
      settle(claim, (request) => ({ ...request, state: "failed", lastError: error, updatedAt: now })),
    release: (claim) => Effect.asVoid(settle(claim, (request) => request)),
    backlog: Effect.sync(() => {
      const pending = rows.filter((row) => row.request.state === "pending").map((row) => row.request.createdAt)
      const oldest = pending.reduce<Date | undefined>((min, at) => (min === undefined || at < min ? at : min), undefined)
      return { pending: pending.length, oldest }
    }),
    list: (run) =>
      Effect.sync(() =>
        rows.filter((row) => runKeyText(row.request.action.run) === runKeyText(run)).map((row) => row.request)
      )
  })
}
