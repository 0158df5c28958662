import { expect, it } from "@effect/vitest"
import { Duration, Effect, Tracer } from "effect"
import { ActionPhase } from "../../src/domain/Phase.js"
import type { RunView } from "../../src/domain/Records.js"
import { type Claim, Outbox } from "../../src/ports/Outbox.js"
import { RunStore } from "../../src/ports/RunStore.js"
import type { Backend } from "../support/backends.js"
import { actionKey, at, childAction, runView } from "../support/Fixtures.js"

const lease = Duration.seconds(30)
const later = (date: Date, ms: number) => new Date(date.getTime() + ms)
const reason = { reason: "stop it", abortedBy: undefined }

const idsOf = (claims: ReadonlyArray<Claim>) => claims.map((claim) => claim.request.id)
const summary = (claims: ReadonlyArray<Claim>) =>
  claims.map(({ request }) => `${request.action.run.name}/${request.action.name}:${request.kind}`)

const createRuns = (count: number, createdAt = at(10)) =>
  Effect.flatMap(RunStore, (store) =>
    Effect.forEach(Array.from({ length: count }, () => runView({ createdAt })), (view) =>
      Effect.as(store.createRun({ view, task: undefined }), view)))

/** The Outbox port's semantics, with the RunStore that writes it, on one backend. */
export const outboxContract = (backend: Backend<RunStore | Outbox>): void => {
  const provided = <A, E>(effect: Effect.Effect<A, E, RunStore | Outbox>) => Effect.provide(effect, backend.layer)

  it.effect("createRun writes one pending enqueue of the root, due at creation; the same name again adds none", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const outbox = yield* Outbox
      const view = runView({ createdAt: at(10) })
      yield* store.createRun({ view, task: undefined })
      yield* Effect.flip(store.createRun({ view, task: undefined }))
      const [request, ...rest] = yield* outbox.list(view.run.key)
      expect(rest).toEqual([])
      expect(request).toEqual({
        id: expect.any(Number),
        action: view.root.key,
        kind: "enqueue",
        reason: undefined,
        state: "pending",
        attempts: 0,
        nextAttemptAt: at(10),
        lastError: undefined,
        createdAt: at(10),
        updatedAt: at(10),
        deliveredAt: undefined,
        traceparent: undefined
      })
    })))

  it.effect("a request carries the traceparent of the span its write was called in, claimed with it; none when the tracer is off", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const outbox = yield* Outbox
      const traced = runView({ createdAt: at(10), phase: ActionPhase.RUNNING })
      const span = yield* Effect.makeSpan("Runs.create", {
        parent: Tracer.externalSpan({ traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7" })
      })
      yield* store.createRun({ view: traced, task: undefined }).pipe(Effect.withParentSpan(span))
      // A caller that is not sampled: its decision travels with its ids.
      const unsampled = Tracer.externalSpan({ traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", sampled: false })
      yield* store.abort(traced.root.key, reason, at(20)).pipe(Effect.withParentSpan(unsampled))
      const untraced = runView({ createdAt: at(10) })
      yield* store.createRun({ view: untraced, task: undefined }).pipe(
        Effect.withSpan("Runs.create"),
        Effect.withTracerEnabled(false)
      )
      const outside = runView({ createdAt: at(10) })
      yield* store.createRun({ view: outside, task: undefined })

      const enqueue = `00-4bf92f3577b34da6a3ce929d0e0e4736-${span.spanId}-01`
      expect((yield* outbox.list(traced.run.key)).map((request) => request.traceparent))
        .toEqual([enqueue, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"])
      expect((yield* outbox.list(untraced.run.key)).map((request) => request.traceparent)).toEqual([undefined])
      expect((yield* outbox.list(outside.run.key)).map((request) => request.traceparent)).toEqual([undefined])
      const claims = yield* outbox.claim(at(100), { limit: 10, lease })
      expect(claims.map(({ request }) => [request.action.run.name, request.traceparent]).sort())
        .toEqual([[traced.run.key.name, enqueue], [untraced.run.key.name, undefined], [outside.run.key.name, undefined]].sort())
    })))

  it.effect("a run deleted as finished takes its requests with it; a claim on one is then settled as lost", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const outbox = yield* Outbox
      const [gone, kept] = yield* createRuns(2)
      yield* store.abort(gone!.root.key, reason, at(20))
      const claims = yield* outbox.claim(at(30), { limit: 10, lease })
      expect(claims).toHaveLength(2)
      const outcome = yield* store.deleteFinishedRuns({ endedBefore: at(100), limit: 10 })
      expect(outcome).toEqual({ _tag: "Deleted", runs: [gone!.run.key] })
      expect(yield* outbox.list(gone!.run.key)).toEqual([])
      expect(yield* outbox.list(kept!.run.key)).toHaveLength(1)
      const goneClaim = claims.find((claim) => claim.request.action.run.name === gone!.run.key.name)!
      expect(yield* outbox.delivered([goneClaim], at(31))).toHaveLength(0)
    })))

  it.effect("abort writes one abort of the target with its reason, only when something was aborted", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const outbox = yield* Outbox
      const view = runView({ createdAt: at(10), phase: ActionPhase.RUNNING })
      yield* store.createRun({ view, task: undefined })
      yield* store.recordAction(childAction(view, "c1"))
      yield* store.recordAction(childAction(view, "c2", { phase: ActionPhase.SUCCEEDED }))
      yield* store.abort(actionKey(view, "c2"), reason, at(20))
      yield* store.abort(actionKey(view, "nope"), reason, at(20))
      yield* store.abort(view.root.key, reason, at(30))
      yield* store.abort(view.root.key, { reason: "again", abortedBy: undefined }, at(40))
      const requests = yield* outbox.list(view.run.key)
      expect(requests.map((r) => [r.action.name, r.kind, r.reason, r.state])).toEqual([
        ["a0", "enqueue", undefined, "pending"],
        ["a0", "abort", "stop it", "pending"]
      ])
      expect(requests[1]!.createdAt).toEqual(at(30))
      expect(requests[1]!.id).toBeGreaterThan(requests[0]!.id)
    })))

  it.effect("backlog: the pending requests and the oldest one's creation; settled ones leave it", () =>
    provided(Effect.gen(function*() {
      const outbox = yield* Outbox
      expect(yield* outbox.backlog).toEqual({ pending: 0, oldest: undefined })
      yield* createRuns(1, at(10))
      yield* createRuns(2, at(20))
      expect(yield* outbox.backlog).toEqual({ pending: 3, oldest: at(10) })
      const [first] = yield* outbox.claim(at(100), { limit: 1, lease })
      expect(yield* outbox.delivered([first!], at(110))).toHaveLength(1)
      const [second] = yield* outbox.claim(at(120), { limit: 1, lease })
      expect(yield* outbox.failed(second!, "no", at(130))).toBe(true)
      expect(yield* outbox.backlog).toEqual({ pending: 1, oldest: at(20) })
    })))

  it.effect("claim: oldest first (all due when written), up to the limit, only requests that are due, each claim counted", () =>
    provided(Effect.gen(function*() {
      const outbox = yield* Outbox
      const store = yield* RunStore
      const late = runView({ createdAt: at(500) })
      const early = yield* createRuns(3)
      yield* store.createRun({ view: late, task: undefined })
      const first = yield* outbox.claim(at(100), { limit: 2, lease: Duration.hours(1) })
      expect(summary(first)).toEqual(early.slice(0, 2).map((v) => `${v.run.key.name}/a0:enqueue`))
      expect(first.map((claim) => [claim.request.attempts, claim.until])).toEqual([
        [1, later(at(100), 3_600_000)],
        [1, later(at(100), 3_600_000)]
      ])
      const second = yield* outbox.claim(at(100), { limit: 10, lease: Duration.hours(1) })
      expect(summary(second)).toEqual([`${early[2]!.run.key.name}/a0:enqueue`])
      expect(yield* outbox.claim(at(100), { limit: 10, lease: Duration.hours(1) })).toEqual([])
      const last = yield* outbox.claim(at(500), { limit: 10, lease: Duration.hours(1) })
      expect(summary(last)).toEqual([`${late.run.key.name}/a0:enqueue`])
    })))

  it.effect("claim: the request due earliest first; a request retried later waits behind those due before it", () =>
    provided(Effect.gen(function*() {
      const outbox = yield* Outbox
      const [retried, fresh] = yield* createRuns(2)
      const [claim] = yield* outbox.claim(at(100), { limit: 1, lease })
      expect(summary([claim!])).toEqual([`${retried!.run.key.name}/a0:enqueue`])
      yield* outbox.retryAt(claim!, at(150), "Unavailable: try later", at(101))
      // Both due at 200: the fresh request (due since 10) goes before the retried one (due since 150).
      const [first] = yield* outbox.claim(at(200), { limit: 1, lease })
      expect(summary([first!])).toEqual([`${fresh!.run.key.name}/a0:enqueue`])
      const both = yield* outbox.claim(later(at(200), 31_000), { limit: 2, lease })
      expect(summary(both)).toEqual([fresh, retried].map((v) => `${v!.run.key.name}/a0:enqueue`))
    })))

  it.effect("only a run's oldest pending request is claimable; the next one once it is settled", () =>
    provided(Effect.gen(function*() {
      const outbox = yield* Outbox
      const store = yield* RunStore
      const [view] = yield* createRuns(1)
      yield* store.abort(view!.root.key, reason, at(20))
      const [enqueue, ...none] = yield* outbox.claim(at(100), { limit: 10, lease })
      expect(none).toEqual([])
      expect(enqueue?.request.kind).toBe("enqueue")
      // Even with the enqueue's claim expired, the abort must wait behind it.
      const again = yield* outbox.claim(later(at(100), 31_000), { limit: 10, lease })
      expect(idsOf(again)).toEqual([enqueue!.request.id])
      expect(yield* outbox.delivered([again[0]!], at(200))).toHaveLength(1)
      const [abort] = yield* outbox.claim(at(200), { limit: 10, lease })
      expect([abort?.request.kind, abort?.request.reason]).toEqual(["abort", "stop it"])
    })))

  it.effect("a claimed request is not claimed again while its lease holds, and is once it has expired", () =>
    provided(Effect.gen(function*() {
      const outbox = yield* Outbox
      yield* createRuns(1)
      const [claim] = yield* outbox.claim(at(100), { limit: 10, lease })
      expect(yield* outbox.claim(later(at(100), 29_999), { limit: 10, lease })).toEqual([])
      const [again] = yield* outbox.claim(later(at(100), 30_000), { limit: 10, lease })
      expect(again?.request.id).toBe(claim!.request.id)
      expect(again?.request.attempts).toBe(2)
      // The first claim no longer holds: its outcome is not recorded.
      expect(yield* outbox.delivered([claim!], at(200))).toHaveLength(0)
      expect(yield* outbox.failed(claim!, "late", at(200))).toBe(false)
      expect(yield* outbox.retryAt(claim!, at(300), "late", at(200))).toBe(false)
      expect(yield* outbox.delivered([again!], at(200))).toHaveLength(1)
      expect(yield* outbox.delivered([again!], at(201))).toHaveLength(0)
    })))

  it.effect("delivered records several claims at once, of different leases, and only those that still hold", () =>
    provided(Effect.gen(function*() {
      const outbox = yield* Outbox
      const views = yield* createRuns(3)
      const [short] = yield* outbox.claim(at(100), { limit: 1, lease: Duration.seconds(1) })
      const [long] = yield* outbox.claim(at(100), { limit: 1, lease })
      // The short claim runs out and its request is claimed again, with the third run's, on a later lease.
      const retaken = yield* outbox.claim(later(at(100), 1_000), { limit: 10, lease })
      expect(summary(retaken)).toEqual(summary([short!, ...retaken.slice(1)]))
      expect(retaken).toHaveLength(2)
      const recorded = yield* outbox.delivered([short!, long!, ...retaken], at(200))
      expect(idsOf(recorded)).toEqual(idsOf([long!, ...retaken]))
      const lists = yield* Effect.forEach(views, (view) => outbox.list(view.run.key))
      expect(lists.map((list) => list[0])).toMatchObject(views.map(() => ({ state: "delivered", deliveredAt: at(200) })))
      expect(yield* outbox.delivered([long!], at(201))).toEqual([])
      expect(yield* outbox.delivered([], at(201))).toEqual([])
    })))

  it.effect("delivered and failed are recorded with their time and error; neither is claimed again", () =>
    provided(Effect.gen(function*() {
      const outbox = yield* Outbox
      const [one, two] = yield* createRuns(2)
      const claims = yield* outbox.claim(at(100), { limit: 10, lease })
      expect(yield* outbox.delivered([claims[0]!], at(101))).toHaveLength(1)
      expect(yield* outbox.failed(claims[1]!, "Unavailable: executor down", at(102))).toBe(true)
      const [delivered] = yield* outbox.list(one!.run.key)
      expect(delivered).toMatchObject({ state: "delivered", attempts: 1, deliveredAt: at(101), updatedAt: at(101) })
      const [failed] = yield* outbox.list(two!.run.key)
      expect(failed).toMatchObject({
        state: "failed",
        attempts: 1,
        lastError: "Unavailable: executor down",
        deliveredAt: undefined,
        updatedAt: at(102)
      })
      expect(yield* outbox.claim(at(10_000), { limit: 10, lease })).toEqual([])
    })))

  it.effect("retryAt keeps the request pending with its error, due again at the given time", () =>
    provided(Effect.gen(function*() {
      const outbox = yield* Outbox
      const [view] = yield* createRuns(1)
      const [claim] = yield* outbox.claim(at(100), { limit: 10, lease })
      expect(yield* outbox.retryAt(claim!, at(150), "Unavailable: try later", at(101))).toBe(true)
      expect((yield* outbox.list(view!.run.key))[0]).toMatchObject({
        state: "pending",
        attempts: 1,
        nextAttemptAt: at(150),
        lastError: "Unavailable: try later"
      })
      expect(yield* outbox.claim(later(at(150), -1), { limit: 10, lease })).toEqual([])
      const [again] = yield* outbox.claim(at(150), { limit: 10, lease })
      expect([again?.request.attempts, again?.request.lastError]).toEqual([2, "Unavailable: try later"])
      expect(yield* outbox.delivered([again!], at(151))).toHaveLength(1)
      expect((yield* outbox.list(view!.run.key))[0]).toMatchObject({
        state: "delivered",
        lastError: "Unavailable: try later"
      })
    })))

  it.effect("release gives the request back at once, its attempt counted", () =>
    provided(Effect.gen(function*() {
      const outbox = yield* Outbox
      yield* createRuns(1)
      const [claim] = yield* outbox.claim(at(100), { limit: 10, lease })
      yield* outbox.release(claim!)
      const [again] = yield* outbox.claim(at(100), { limit: 10, lease })
      expect([again?.request.id, again?.request.attempts]).toEqual([claim!.request.id, 2])
    })))

  it.effect("claims made at the same time never share a request", () =>
    provided(Effect.gen(function*() {
      const outbox = yield* Outbox
      const views: ReadonlyArray<RunView> = yield* createRuns(30)
      const batches = yield* Effect.all(
        Array.from({ length: 12 }, () => outbox.claim(at(100), { limit: 4, lease })),
        { concurrency: "unbounded" }
      )
      const ids = batches.flatMap((batch) => idsOf(batch))
      expect(new Set(ids).size).toBe(ids.length)
      expect(ids.length).toBe(views.length)
    })))
}
