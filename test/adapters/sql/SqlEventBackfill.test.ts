import { create, type MessageInitShape } from "@bufbuild/protobuf"
import { timestampFromMs } from "@bufbuild/protobuf/wkt"
import { SqlClient } from "@effect/sql"
import { expect, it } from "@effect/vitest"
import { Effect, Either, Layer } from "effect"
import { ActionEventSchema } from "#gen/flyteidl2/workflow/run_definition_pb.js"
import { storedEvent } from "../../../src/adapters/connect/InternalRequests.js"
import * as ProtoEventFacts from "../../../src/adapters/connect/ProtoEventFacts.js"
import { backfillEventFacts } from "../../../src/adapters/sql/SqlEventBackfill.js"
import { runMigrations } from "../../../src/adapters/sql/SqlMigrations.js"
import * as SqlRunStore from "../../../src/adapters/sql/SqlRunStore.js"
import { mergeAttempt } from "../../../src/domain/AttemptMerge.js"
import type { ActionKey } from "../../../src/domain/Ids.js"
import type { EventFactsReader } from "../../../src/ports/EventFactsReader.js"
import { RunStore } from "../../../src/ports/RunStore.js"
import { describeBackends, sqlBackends } from "../../support/backends.js"
import { childAction, comparable, runView } from "../../support/Fixtures.js"

type Client = Layer.Layer<SqlClient.SqlClient, unknown>

const withStore = <A, E>(client: Client, body: Effect.Effect<A, E, RunStore | SqlClient.SqlClient | EventFactsReader>) =>
  Effect.provide(
    body,
    Layer.mergeAll(SqlRunStore.layer, ProtoEventFacts.layer).pipe(
      Layer.provideMerge(Layer.provideMerge(Layer.effectDiscard(runMigrations), client))
    )
  )

/** An attempt's events as an executor reports them, each fact the merge reads set on one of them. */
const attemptEvents = (key: ActionKey, attempt: number) => {
  const id = { run: { org: "", ...key.run }, name: key.name }
  const event = (phase: number, second: number, extra: Pick<
      MessageInitShape<typeof ActionEventSchema>,
      "version" | "cluster" | "logInfo" | "logContext" | "clusterEvents" | "cacheStatus" | "errorInfo" | "outputs"
    > = {}) =>
    create(ActionEventSchema, {
      id,
      attempt,
      phase,
      updatedTime: timestampFromMs(1_700_000_000_000 + attempt * 100_000 + second * 1000),
      reportedTime: timestampFromMs(1_700_000_000_000 + attempt * 100_000 + second * 1000),
      ...extra
    })
  return [
    event(1, 0, { cluster: "cluster-a" }),
    event(4, 2, {
      logInfo: [{ name: "pod", uri: `https://logs/${key.name}-${attempt}` }, { name: "driver", uri: "https://logs/d" }],
      logContext: { primaryPodName: `${key.name}-${attempt}` },
      clusterEvents: [{ occurredAt: timestampFromMs(1_700_000_001_000), message: "Started" }],
      cacheStatus: 2
    }),
    event(4, 3, { version: 1, logInfo: [{ name: "pod", uri: `https://logs/${key.name}-${attempt}/again` }] }),
    attempt === 1
      ? event(6, 9, { errorInfo: { message: "OOMKilled", kind: 2 }, clusterEvents: [{ message: "Container killed" }] })
      : event(5, 9, { outputs: { outputUri: `file:///out/${key.name}/${attempt}` }, cluster: "cluster-b" })
  ]
}

const stored = (events: ReadonlyArray<ReturnType<typeof attemptEvents>[number]>) =>
  events.map((event) => Either.getOrThrow(storedEvent(event)))

describeBackends("SqlEventBackfill", sqlBackends(), (backend) => {
  it.effect("a fresh database has nothing to fill", () =>
    withStore(backend.layer, Effect.gen(function*() {
      expect(yield* backfillEventFacts).toBe(0)
    })))

  it.effect("events stored without their facts are filled in batches, then merge exactly as before", () =>
    withStore(backend.layer, Effect.gen(function*() {
      const store = yield* RunStore
      const sql = yield* SqlClient.SqlClient
      const view = runView()
      const child = childAction(view, "c1")
      yield* store.createRun({ view, task: undefined })
      yield* store.recordAction(child, mergeAttempt)
      const keys = [view.root.key, child.key]
      const all = keys.map((key) => [attemptEvents(key, 1), attemptEvents(key, 2)])
      // Each attempt's first three events stored as the service did before it kept their facts; an event of a
      // run not created yet, more than one batch of them, and one whose bytes are not an ActionEvent too.
      const early = stored(all.flat().flatMap((events) => events.slice(0, 3)))
      const orphans = stored(Array.from({ length: 1100 }, (_, i) => attemptEvents(runView().root.key, 1 + (i % 3))[0]!))
      yield* store.recordEvents([...early, ...orphans], mergeAttempt)
      yield* sql`UPDATE action_events SET facts = NULL`
      yield* sql`UPDATE action_events SET event_pb = ${Buffer.from([0xff, 0xff, 0xff])}
        WHERE run_name = ${orphans[0]!.key.run.name}`

      expect(yield* backfillEventFacts).toBe(early.length + orphans.length)
      expect(yield* sql`SELECT COUNT(*) AS n FROM action_events WHERE facts IS NULL`).toEqual([{ n: 0 }])
      expect(yield* sql`SELECT facts FROM action_events WHERE run_name = ${orphans[0]!.key.run.name}`)
        .toEqual([{ facts: "{}" }])
      expect(yield* backfillEventFacts).toBe(0)

      // The last event of each attempt arrives now: each attempt is rebuilt from all four events, as the merge
      // of the events themselves gives it.
      yield* store.recordEvents(stored(all.flat().map((events) => events[3]!)), mergeAttempt)
      for (const [i, key] of keys.entries()) {
        const expected = all[i]!.map((events) => mergeAttempt(events.map((event) => ProtoEventFacts.eventFacts(event))))
        expect(comparable(yield* store.listAttempts(key))).toStrictEqual(comparable(expected))
      }
    })), 30_000)
})
