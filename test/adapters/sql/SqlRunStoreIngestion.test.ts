import { SqlClient } from "@effect/sql"
import { expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Option } from "effect"
import { runMigrations } from "../../../src/adapters/sql/SqlMigrations.js"
import * as SqlRunStore from "../../../src/adapters/sql/SqlRunStore.js"
import type { RebuildAttempt } from "../../../src/domain/Events.js"
import { ActionPhase } from "../../../src/domain/Phase.js"
import { RunStore } from "../../../src/ports/RunStore.js"
import { describeBackends, sqlBackends } from "../../support/backends.js"
import { at, attempt, childAction, payload, runView, storedEvent } from "../../support/Fixtures.js"

type Client = Layer.Layer<SqlClient.SqlClient, unknown>

const withStore = <A, E>(client: Client, body: Effect.Effect<A, E, RunStore | SqlClient.SqlClient>) =>
  Effect.provide(
    body,
    SqlRunStore.layer.pipe(Layer.provideMerge(Layer.provideMerge(Layer.effectDiscard(runMigrations), client)))
  )

/** An attempt holding one cluster event per event it was rebuilt from; counts its calls. */
const countingRebuild = () => {
  let calls = 0
  const rebuild: RebuildAttempt = (events) => {
    calls++
    return attempt(events[0]!.attempt, {
      clusterEvents: events.map((event) => ({ occurredAt: at(0), message: `${event.phase}:${event.version}` }))
    })
  }
  return { rebuild, calls: () => calls }
}

/** The event log and status updates as SQL stores them, and what concurrent ingestion does on a database. */
describeBackends("SqlRunStore ingestion", sqlBackends(), (backend) => {
  it.effect("the event log keeps each event's key, times and binary form (no JSON), with its run's org or '' before the run", () =>
    withStore(backend.layer, Effect.gen(function*() {
      const store = yield* RunStore
      const sql = yield* SqlClient.SqlClient
      const view = runView({ org: "acme" })
      const early = runView()
      yield* store.createRun({ view, task: undefined })
      const timedOut = storedEvent(view.root.key, { attempt: 2, phase: ActionPhase.TIMED_OUT, version: 7 })
      const orphan = storedEvent(early.root.key, { reportedTime: undefined, updatedTime: undefined })
      yield* store.recordEvents([timedOut, orphan], countingRebuild().rebuild)
      const rows = yield* sql<Record<string, unknown>>`SELECT org, run_name, action_name, attempt, phase, version,
        reported_time, updated_time, event, event_pb FROM action_events ORDER BY id`
      expect(rows.map(({ event, event_pb, reported_time, updated_time, ...rest }) => ({
        ...rest,
        times: [reported_time, updated_time].map((time) => (time === null ? null : new Date(String(time)).getTime())),
        event,
        pb: Buffer.from(event_pb as Uint8Array).toString("hex")
      }))).toEqual([timedOut, orphan].map((stored, i) => ({
        org: i === 0 ? "acme" : "",
        run_name: stored.key.run.name,
        action_name: "a0",
        attempt: stored.attempt,
        phase: i === 0 ? "PHASE_TIMED_OUT" : "PHASE_RUNNING",
        version: stored.version,
        times: [stored.reportedTime?.getTime() ?? null, stored.updatedTime?.getTime() ?? null],
        event: null,
        pb: Buffer.from(stored.raw.binary).toString("hex")
      })))
    })))

  it.effect("updateAction keeps phase, phase_number and duration_ms in step with the record", () =>
    withStore(backend.layer, Effect.gen(function*() {
      const store = yield* RunStore
      const sql = yield* SqlClient.SqlClient
      const view = runView({ createdAt: at(10), phase: ActionPhase.RUNNING })
      yield* store.createRun({ view, task: undefined })
      const columns = sql`SELECT phase, phase_number, duration_ms FROM actions`
      const set = (phase: ActionPhase, endedAt: Date | undefined) =>
        store.updateAction(view.root.key, (current) => ({ ...current, phase, endedAt }))
      yield* set(ActionPhase.FAILED, at(13))
      expect(yield* columns).toEqual([{ phase: "PHASE_FAILED", phase_number: 6, duration_ms: 3000 }])
      yield* set(ActionPhase.QUEUED, undefined)
      expect(yield* columns).toEqual([{ phase: "PHASE_QUEUED", phase_number: 1, duration_ms: null }])
    })))

  it.effect("updateAction writes only the columns apply changes: a status update leaves the spec as stored", () =>
    withStore(backend.layer, Effect.gen(function*() {
      const store = yield* RunStore
      const sql = yield* SqlClient.SqlClient
      const view = runView({ phase: ActionPhase.QUEUED })
      yield* store.createRun({ view, task: undefined })
      // A trigger that refuses any UPDATE naming a spec column in its SET list.
      if (backend.name === "postgres") {
        yield* sql.unsafe(`CREATE FUNCTION refuse_spec_write() RETURNS trigger LANGUAGE plpgsql AS
          $$ BEGIN RAISE EXCEPTION 'spec written'; END $$`)
        yield* sql.unsafe(`CREATE TRIGGER spec_kept BEFORE UPDATE OF task_spec, task_spec_pb ON actions
          FOR EACH ROW EXECUTE FUNCTION refuse_spec_write()`)
      } else {
        yield* sql.unsafe(`CREATE TRIGGER spec_kept BEFORE UPDATE OF task_spec, task_spec_pb ON actions
          BEGIN SELECT RAISE(ABORT, 'spec written'); END`)
      }
      const running = yield* store.updateAction(view.root.key, (current) => ({
        ...current,
        phase: ActionPhase.RUNNING,
        startedAt: at(5),
        updatedAt: at(5)
      }))
      expect(running._tag).toBe("Updated")
      expect(Option.getOrThrow(yield* store.getAction(view.root.key)).phase).toBe(ActionPhase.RUNNING)
      // The trigger does refuse a write of the spec, so the update above did not name it.
      const respecified = yield* Effect.exit(store.updateAction(view.root.key, (current) => ({
        ...current,
        spec: { kind: "task", payload: payload({ taskTemplate: { id: { name: "other" } } }) }
      })))
      expect(Exit.isFailure(respecified)).toBe(true)
    })))

  it.effect("a batch over more runs and actions than one statement can name is split, not refused", () =>
    withStore(backend.layer, Effect.gen(function*() {
      const store = yield* RunStore
      const sql = yield* SqlClient.SqlClient
      const view = runView()
      yield* store.createRun({ view, task: undefined })
      const children = Array.from({ length: 250 }, (_, i) => childAction(view, `c${i}`))
      yield* Effect.forEach(children, (child) => store.recordAction(child), { discard: true })
      const { calls, rebuild } = countingRebuild()
      const unknownRuns = Array.from({ length: 1100 }, () => storedEvent(runView().root.key))
      const batch = [...unknownRuns, ...children.map((child) => storedEvent(child.key))]
      expect(yield* store.recordEvents(batch, rebuild)).toHaveLength(1350)
      expect(yield* sql`SELECT COUNT(*) AS n FROM action_events`).toEqual([{ n: 1350 }])
      expect(calls()).toBe(250)
      const last = yield* store.listAttempts(children[249]!.key)
      expect(last.map((a) => a.clusterEvents.length)).toEqual([1])
    })), 30_000)

  it.live("concurrent writes of one action's events and the action itself: every event reaches its attempt", () =>
    withStore(backend.layer, Effect.gen(function*() {
      const store = yield* RunStore
      const view = runView()
      yield* store.createRun({ view, task: undefined })
      const { rebuild } = countingRebuild()
      for (let round = 0; round < 10; round++) {
        const child = childAction(view, `c${round}`)
        const batches = Array.from({ length: 4 }, (_, i) => [storedEvent(child.key, { version: i })])
        yield* Effect.all([
          store.recordAction(child, rebuild),
          ...batches.map((batch) => store.recordEvents(batch, rebuild))
        ], { concurrency: "unbounded" })
        const attempts = yield* store.listAttempts(child.key)
        expect(attempts.map((a) => a.clusterEvents.length)).toEqual([4])
      }
    })))

  it.live("an abort and an event batch over the same actions, in opposite orders, both commit", () =>
    withStore(backend.layer, Effect.gen(function*() {
      const store = yield* RunStore
      const { rebuild } = countingRebuild()
      for (let round = 0; round < 10; round++) {
        const view = runView({ phase: ActionPhase.RUNNING })
        yield* store.createRun({ view, task: undefined })
        const children = Array.from({ length: 6 }, (_, i) =>
          childAction(view, `c${i}`, { phase: ActionPhase.RUNNING }))
        for (const [i, child] of children.entries()) {
          yield* store.recordAction(child)
          if (i % 2 === 0) yield* store.putAttempts(child.key, [attempt(1)])
        }
        const batch = [...children].reverse().map((child) => storedEvent(child.key))
        const [outcome, touched] = yield* Effect.all([
          store.abort(view.root.key, { reason: "stop", abortedBy: undefined }, at(1000)),
          store.recordEvents(batch, rebuild)
        ], { concurrency: "unbounded" })
        expect(outcome).toMatchObject({ _tag: "Aborted" })
        expect(touched).toHaveLength(6)
      }
    })))
})
