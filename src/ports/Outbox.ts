import { Context, Data, type Duration, type Effect } from "effect"
import type { ActionKey, RunKey } from "../domain/Ids.js"

/** The outbox's database cannot be reached; the worker tries again later. */
export class OutboxUnavailable extends Data.TaggedError("OutboxUnavailable")<{ readonly reason: string }> {}

export type DispatchKind = "enqueue" | "abort"
export type DispatchState = "pending" | "delivered" | "failed"

/** One request to the dispatcher, as the outbox holds it (a row of `outbox`). */
export interface DispatchRequest {
  readonly id: number
  readonly action: ActionKey
  readonly kind: DispatchKind
  /** The abort reason; undefined for an enqueue. */
  readonly reason: string | undefined
  readonly state: DispatchState
  /** Deliveries tried so far (a claim counts as one). */
  readonly attempts: number
  readonly nextAttemptAt: Date
  readonly lastError: string | undefined
  readonly createdAt: Date
  readonly updatedAt: Date
  readonly deliveredAt: Date | undefined
  /** The W3C `traceparent` of the span the RunStore was called in when it wrote the request
   * (`currentTraceparent`), for its delivery to continue that trace; undefined when spans were not recorded. */
  readonly traceparent: string | undefined
}

/** A request claimed by one worker until `until`; the outcome is recorded only while the claim holds. */
export interface Claim {
  readonly request: DispatchRequest
  readonly until: Date
}

/** The order requests are claimed in: due earliest first, then oldest first. */
export const claimOrder = (a: DispatchRequest, b: DispatchRequest): number =>
  a.nextAttemptAt.getTime() - b.nextAttemptAt.getTime() || a.id - b.id

/**
 * The requests the RunStore writes in the transaction that causes them (createRun: `enqueue` of the root
 * action; abort: one `abort` of the target, when something was aborted), with the trace of the call that wrote
 * them, for a worker to deliver.
 */
export class Outbox extends Context.Tag("runs/Outbox")<Outbox, {
  /** Claims, until `now + lease`, up to `limit` pending requests that are due and not claimed, in
   * `claimOrder` (a request not tried yet is due when written), each the oldest pending request of its run (so
   * a run's requests go out in order). Two callers never claim the same request while its claim holds. Each
   * claim adds one to `attempts`. The claims come in `claimOrder`. */
  readonly claim: (
    now: Date,
    options: { readonly limit: number; readonly lease: Duration.Duration }
  ) => Effect.Effect<ReadonlyArray<Claim>, OutboxUnavailable>
  /** Marks the requests delivered, all at once; the claims that still held, whose requests are now delivered (the
   * others are left as they are). */
  readonly delivered: (claims: ReadonlyArray<Claim>, now: Date) => Effect.Effect<ReadonlyArray<Claim>, OutboxUnavailable>
  /** Keeps the request pending, due at `at`, with `error` as its last error. False when the claim no longer
   * holds. */
  readonly retryAt: (claim: Claim, at: Date, error: string, now: Date) => Effect.Effect<boolean, OutboxUnavailable>
  /** Gives up on the request: failed, with `error` as its last error. False when the claim no longer holds. */
  readonly failed: (claim: Claim, error: string, now: Date) => Effect.Effect<boolean, OutboxUnavailable>
  /** Ends the claim without an outcome (the worker stops): the request is due again at once. */
  readonly release: (claim: Claim) => Effect.Effect<void, OutboxUnavailable>
  /** How many requests are pending, and when the oldest of them was written (undefined when none is). */
  readonly backlog: Effect.Effect<{ readonly pending: number; readonly oldest: Date | undefined }, OutboxUnavailable>
  /** A run's requests in the order they were written, whatever their state. */
  readonly list: (run: RunKey) => Effect.Effect<ReadonlyArray<DispatchRequest>, OutboxUnavailable>
}>() {}
