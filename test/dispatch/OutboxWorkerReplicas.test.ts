import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { layerPostgresUrl } from "../../src/adapters/sql/SqlClients.js"
import { runMigrations } from "../../src/adapters/sql/SqlMigrations.js"
import * as SqlOutbox from "../../src/adapters/sql/SqlOutbox.js"
import * as SqlRunStore from "../../src/adapters/sql/SqlRunStore.js"
import { RunStore } from "../../src/ports/RunStore.js"
import { allSettled, dispatchableView, layerActionsWorker, outboxOf, states } from "../support/Dispatch.js"
import { freshPostgresUrl, postgresAdminUrl } from "../support/TestDatabases.js"
import { eventually, makeTestExecutor } from "../support/TestExecutor.js"

/** A replica's own connection pool on the database at `url`, with its store and outbox. */
const replica = (url: string) => Layer.merge(SqlRunStore.layer, SqlOutbox.layer).pipe(Layer.provide(layerPostgresUrl(url)))

describe.skipIf(postgresAdminUrl() === undefined)("OutboxWorker replicas [postgres]", () => {
  it.live("two workers on one database never deliver a request at the same time, and deliver each once, in order", () =>
    Effect.gen(function*() {
      const { url } = yield* freshPostgresUrl
      yield* Effect.provide(runMigrations, layerPostgresUrl(url))
      const executor = yield* makeTestExecutor
      executor.behavior.delayMs = 15
      const views = Array.from({ length: 30 }, () => dispatchableView())
      yield* Effect.gen(function*() {
        const store = yield* RunStore
        for (const [i, view] of views.entries()) {
          yield* store.createRun({ view, task: undefined })
          if (i % 2 === 0) yield* store.abort(view.root.key, { reason: `stop ${i}`, abortedBy: undefined }, new Date())
        }
      }).pipe(Effect.provide(replica(url)))

      for (const _ of [1, 2]) yield* Layer.build(layerActionsWorker(executor).pipe(Layer.provide(replica(url))))
      const keys = views.map((view) => view.run.key)
      yield* eventually("every request is delivered", allSettled(keys).pipe(Effect.provide(replica(url))), "20 seconds")

      expect(executor.maxOverlap()).toBe(1)
      expect(executor.calls.every((call) => call.answer === "ok")).toBe(true)
      for (const [i, view] of views.entries()) {
        const key = `${view.run.key.project}/${view.run.key.domain}/${view.run.key.name}/a0`
        const received = executor.calls.filter((call) => call.key === key).map((call) => call.kind)
        expect(received, key).toEqual(i % 2 === 0 ? ["enqueue", "abort"] : ["enqueue"])
        const requests = yield* outboxOf(view.run.key).pipe(Effect.provide(replica(url)))
        expect(states(requests).every((state) => state.endsWith(":delivered"))).toBe(true)
        expect(requests.every((request) => request.attempts === 1)).toBe(true)
      }
    }).pipe(Effect.scoped))
})
