import { Cause, Clock, Duration, Effect, Either, Exit, Layer, Metric, Option, Random, Schedule, type Tracer } from "effect"
import { actionKeyText, runKeyText } from "../../domain/Ids.js"
import { DispatchFailed, Dispatcher } from "../../ports/Dispatcher.js"
import * as Metrics from "../../ports/Metrics.js"
import { type Claim, type DispatchRequest, Outbox, type OutboxUnavailable } from "../../ports/Outbox.js"
import { Readiness } from "../../ports/Readiness.js"
import type { RunView } from "../../domain/Records.js"
import { RunStore, type StoreUnavailable } from "../../ports/RunStore.js"
import { spanOfTraceparent } from "../../ports/TraceParent.js"
import { withSpanWhenTraced } from "../../ports/Spans.js"
import { abortRequest, enqueueRequest } from "./DispatchRequests.js"

export interface OutboxWorkerOptions {
  /** `runs.dispatchMaxAge`: a request still failing this long after it was written is given up. */
  readonly maxAge: Duration.DurationInput
  /** How often the outbox is read when it had nothing to deliver (default 200 ms). */
  readonly pollInterval?: Duration.DurationInput
  /** Retries wait between half and all of `min(max, base * 2^(attempts - 1))` (default 1 s and 5 min). */
  readonly backoff?: { readonly base: Duration.DurationInput; readonly max: Duration.DurationInput }
  /** How long one delivery may take (default 10 s); a claim lasts three times that, so it outlives it. */
  readonly deliveryTimeout?: Duration.DurationInput
  /** Requests claimed in one round and delivered at once, each of a different run (default 32). */
  readonly concurrency?: number
}

/** A round's runs, by `runKeyText`. */
type Runs = ReadonlyMap<string, RunView>

const describe = (request: DispatchRequest) => `${request.kind} of ${actionKeyText(request.action)}`

type Outcome = "delivered" | "retried" | "given_up"

/** The dispatch counter of each kind and outcome, labelled once rather than at every count. */
const dispatchedBy = new Map(
  (["enqueue", "abort"] as const).flatMap((kind) =>
    (["delivered", "retried", "given_up"] as const).map((outcome) =>
      [`${kind}/${outcome}`, Metric.taggedWithLabels(Metrics.dispatched, Metrics.labels([["kind", kind], ["outcome", outcome]]))] as const
    )
  )
)

/** Counts a delivery's outcome once it is recorded (a claim that expired is another worker's to count). */
const counted = (request: DispatchRequest, outcome: Outcome) =>
  Metric.increment(dispatchedBy.get(`${request.kind}/${outcome}`)!)

/** A delivery continues the trace of the call that wrote its request, when that was recorded. */
const deliverySpan = (request: DispatchRequest): Tracer.SpanOptions => {
  const parent = request.traceparent === undefined ? undefined : spanOfTraceparent(request.traceparent)
  return parent === undefined ? {} : { parent }
}

const logAnnotations = (claim: Claim) => ({ run: runKeyText(claim.request.action.run), kind: claim.request.kind })

const millis = (input: Duration.DurationInput) => Duration.toMillis(Duration.decode(input))

const messageOf = (cause: Cause.Cause<unknown>): string => {
  const error = Cause.squash(cause)
  if (typeof error === "object" && error !== null && "reason" in error) return String(error.reason)
  return error instanceof Error ? error.message : String(error)
}

/**
 * Delivers the outbox through the Dispatcher: polls for due requests, sends each, and records the outcome;
 * a failure is retried with capped exponential backoff and jitter until `maxAge`, then marked failed and
 * logged. Requests left pending by a stopped process are picked up by the next one (a stopped worker gives
 * its claims back; a crashed one's expire).
 */
export const make = (options: OutboxWorkerOptions) =>
  Effect.gen(function*() {
    const outbox = yield* Outbox
    const store = yield* RunStore
    const dispatcher = yield* Dispatcher
    const readiness = yield* Readiness
    const maxAge = millis(options.maxAge)
    const pollInterval = millis(options.pollInterval ?? "200 millis")
    const base = millis(options.backoff?.base ?? "1 second")
    const max = millis(options.backoff?.max ?? "5 minutes")
    const timeout = Duration.decode(options.deliveryTimeout ?? "10 seconds")
    const lease = Duration.times(timeout, 3)
    const concurrency = options.concurrency ?? 32
    const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms))

    /** The runs of a round's claims, read together: one statement for the round instead of one per request. */
    const runsOf = (claims: ReadonlyArray<Claim>): Effect.Effect<Either.Either<Runs, StoreUnavailable>> =>
      claims.length === 0
        ? Effect.succeed(Either.right(new Map()))
        : Effect.either(Effect.map(
          store.getRuns(claims.map((claim) => claim.request.action.run)),
          (views): Runs => new Map(views.map((view) => [runKeyText(view.run.key), view]))
        ))

    const send = (request: DispatchRequest, runs: Either.Either<Runs, StoreUnavailable>) =>
      Effect.flatMap(runs, (found) => {
        const view = Option.fromNullable(found.get(runKeyText(request.action.run)))
        return request.kind === "enqueue"
          ? Effect.flatMap(enqueueRequest(store, view, request), (enqueue) => dispatcher.enqueue(enqueue))
          : dispatcher.abort(abortRequest(view, request))
      })

    // An outcome is logged only when it was recorded: a claim that expired belongs to another worker now.
    const giveUp = (claim: Claim, error: string) =>
      Effect.flatMap(now, (at) => outbox.failed(claim, error, at)).pipe(
        Effect.tap((recorded) =>
          Effect.zipRight(
            counted(claim.request, "given_up"),
            Effect.logWarning(
              `dispatch: gave up on ${describe(claim.request)} after ${claim.request.attempts} attempt(s): ${error}`
            )
          ).pipe(Effect.when(() => recorded))
        )
      )

    const retryOrGiveUp = (claim: Claim, error: string) =>
      Effect.gen(function*() {
        const at = yield* now
        const deadline = claim.request.createdAt.getTime() + maxAge
        if (at.getTime() >= deadline) return yield* giveUp(claim, error)
        const ceiling = Math.min(max, base * 2 ** Math.max(0, claim.request.attempts - 1))
        const delay = ceiling / 2 + (yield* Random.next) * (ceiling / 2)
        const next = new Date(Math.min(deadline, at.getTime() + delay))
        if (!(yield* outbox.retryAt(claim, next, error, at))) return
        yield* counted(claim.request, "retried")
        const wait = Duration.format(Duration.millis(Math.round(next.getTime() - at.getTime())))
        yield* Effect.logInfo(
          `dispatch: ${describe(claim.request)} failed (attempt ${claim.request.attempts}), next try in ${wait}: ${error}`
        )
      })

    // The database may be away for a moment (a restart) just when an outcome is written: it is written again until
    // the claim runs out. Otherwise the request would wait for its lease to expire, and one that was delivered
    // would then be sent a second time.
    const whileClaimed = <A>(claim: Claim, write: Effect.Effect<A, OutboxUnavailable>) =>
      Effect.retry(write, {
        schedule: Schedule.exponential("100 millis").pipe(Schedule.union(Schedule.spaced("1 second"))),
        while: () => Effect.map(Clock.currentTimeMillis, (ms) => ms < claim.until.getTime())
      })

    const cannotRecord = (claim: Claim) => (cause: Cause.Cause<unknown>) =>
      Cause.isInterruptedOnly(cause)
        ? Effect.void
        : Effect.logWarning(`dispatch: cannot record the outcome of ${claim.request.kind}: ${messageOf(cause)}`).pipe(
          Effect.annotateLogs(logAnnotations(claim))
        )

    type Sent = Effect.Effect.Success<ReturnType<typeof sendAll>>[number]

    /**
     * The round's sends, at once; each one's exit, or `undefined` for one still unanswered after the delivery
     * timeout (it is interrupted then). The sends of a round start together, so one timer serves them all: a
     * timeout of each would cost each send a race of two fibers of its own.
     */
    const sendAll = (claims: ReadonlyArray<Claim>, runs: Either.Either<Runs, StoreUnavailable>) =>
      Effect.suspend(() => {
        const exits: Array<Exit.Exit<void, Effect.Effect.Error<ReturnType<typeof send>>> | undefined> = claims.map(() =>
          undefined
        )
        const each = (claim: Claim, i: number) =>
          Effect.exit(send(claim.request, runs)).pipe(
            Effect.map((exit) => void (exits[i] = exit)),
            withSpanWhenTraced("OutboxWorker.deliver", { ...deliverySpan(claim.request), captureStackTrace: false })
          )
        return Effect.forEach(claims, each, { concurrency, discard: true }).pipe(
          Effect.timeoutOption(timeout),
          Effect.as(exits)
        )
      })

    /** Records a send's failure (a request unanswered in time is one): retried later or given up. */
    const settleFailure = (claim: Claim, sent: Sent): Effect.Effect<void> =>
      (sent ?? Exit.fail(new DispatchFailed({ message: `no answer within ${Duration.format(timeout)}` }))).pipe(
        Effect.catchAll((error) =>
          whileClaimed(
            claim,
            error._tag === "Undeliverable"
              ? giveUp(claim, error.message)
              : retryOrGiveUp(claim, error._tag === "DispatchFailed" ? error.message : `database: ${error.reason}`)
          )
        ),
        Effect.catchAllCause(cannotRecord(claim)),
        Effect.asVoid,
        Effect.annotateLogs(logAnnotations(claim))
      )

    // The deliveries of one round are recorded together, in one write once the round's sends have ended: a
    // delivery's record may wait for the round's slowest send (at most the delivery timeout, within the lease).
    const recordDelivered = (claims: ReadonlyArray<Claim>) =>
      claims.length === 0 ? Effect.void : whileClaimed(
        claims[0]!,
        Effect.flatMap(now, (at) => outbox.delivered(claims, at))
      ).pipe(
        Effect.flatMap((recorded) =>
          Effect.zipRight(
            Effect.forEach(recorded, (claim) => counted(claim.request, "delivered"), { discard: true }),
            // Only when debug lines are written: a line's annotations cost it a region of its own even when the
            // line is dropped.
            Effect.whenLogLevel(
              Effect.forEach(recorded, (claim) =>
                Effect.logDebug(`dispatch: delivered ${describe(claim.request)}`).pipe(
                  Effect.annotateLogs(logAnnotations(claim))
                ), { discard: true }),
              "Debug"
            )
          )
        ),
        Effect.catchAllCause(cannotRecord(claims[0]!))
      )

    // A claim is taken uninterruptibly and given back if the worker stops before its outcome is recorded
    // (giving back a settled claim changes nothing), so a restart does not wait for the lease to expire.
    const claimAndDeliver = Effect.acquireUseRelease(
      Effect.flatMap(now, (at) => outbox.claim(at, { limit: concurrency, lease })),
      (claims) =>
        // The runs cannot be read (the database is away): each delivery fails with that, as its own read would.
        Effect.gen(function*() {
          const sent = yield* sendAll(claims, yield* runsOf(claims))
          const isDelivered = (i: number) => sent[i] !== undefined && Exit.isSuccess(sent[i])
          yield* Effect.forEach(
            claims.flatMap((claim, i) => (isDelivered(i) ? [] : [[claim, sent[i]] as const])),
            ([claim, failure]) => settleFailure(claim, failure),
            { concurrency, discard: true }
          )
          yield* recordDelivered(claims.filter((_, i) => isDelivered(i)))
          return claims.length
        }),
      (claims, exit) =>
        Exit.isSuccess(exit) ? Effect.void : Effect.forEach(claims, (claim) => Effect.ignore(outbox.release(claim)))
    )

    // Before the schema is migrated (Postgres migrates in the background) there is no outbox to read yet.
    const poll = Effect.flatMap(
      Effect.isSuccess(readiness.migrated),
      (migrated) => (migrated ? claimAndDeliver : Effect.succeed(0))
    )

    // The outbox cannot be read while the database is away: said once, then tried more and more slowly.
    const unreadable = (cause: Cause.Cause<unknown>, failures: number) =>
      (failures === 0
        ? Effect.logWarning(`dispatch: cannot read the outbox, retrying: ${messageOf(cause)}`)
        : Effect.void).pipe(
          Effect.zipRight(Effect.sleep(Math.min(5_000, pollInterval * 2 ** failures))),
          Effect.as(failures + 1)
        )

    // A full round may have left more due, so the outbox is read again at once; after a partial one the worker
    // waits as it does when idle, so that under a steady stream of writes a round takes what came meanwhile
    // instead of a few requests each, for its two statements and its fibers (a lone request waits no longer than
    // it would with nothing to deliver).
    const step = (failures: number): Effect.Effect<number> =>
      poll.pipe(
        Effect.matchCauseEffect({
          onSuccess: (count) => (count >= concurrency ? Effect.succeed(0) : Effect.as(Effect.sleep(pollInterval), 0)),
          onFailure: (cause) => (Cause.isInterruptedOnly(cause) ? Effect.interrupt : unreadable(cause, failures))
        })
      )

    return Effect.iterate(0, { while: () => true, body: step })
  })

/** The worker, running in the background for the layer's lifetime. Needs Outbox, RunStore, Dispatcher and
 * Readiness. */
export const layer = (options: OutboxWorkerOptions) =>
  Layer.scopedDiscard(Effect.zipRight(
    Effect.flatMap(make(options), (loop) => Effect.forkScoped(loop)),
    Effect.flatMap(Outbox, (outbox) => Metrics.registerReading(readBacklog(outbox)))
  ))

/** The backlog's gauges, read when they are looked at; left as they were while the outbox cannot be read. */
const readBacklog = (outbox: Outbox["Type"]) =>
  Effect.all([outbox.backlog, Clock.currentTimeMillis]).pipe(
    Effect.flatMap(([{ oldest, pending }, now]) =>
      Effect.zipRight(
        Metric.set(Metrics.outboxPending, pending),
        Metric.set(Metrics.outboxOldestAge, oldest === undefined ? 0 : Math.max(0, (now - oldest.getTime()) / 1000))
      )),
    Effect.catchAll((error) => Effect.logDebug(`metrics: cannot read the outbox: ${error.reason}`))
  )
