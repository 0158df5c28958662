import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Context, Deferred, Effect, Either, Fiber, Layer, Stream } from "effect"
import { makeNotice } from "../../src/adapters/sql/SqlChangeNotices.js"
import { layerPostgresUrl } from "../../src/adapters/sql/SqlClients.js"
import { runMigrations } from "../../src/adapters/sql/SqlMigrations.js"
import * as SqlRunStore from "../../src/adapters/sql/SqlRunStore.js"
import { ChangeFeed } from "../../src/ports/ChangeFeed.js"
import { RunStore } from "../../src/ports/RunStore.js"
import { submit } from "../support/Fibers.js"
import { childAction, runView } from "../support/Fixtures.js"
import { freshPostgresUrl, postgresAdminUrl } from "../support/TestDatabases.js"
import { pgNotifyFeed } from "./WatchSupport.js"

describe.skipIf(postgresAdminUrl() === undefined)("change notices in the store's transactions [postgres]", () => {
  it.live("a committed write reaches another replica's feed without any publish; a rolled-back one never does", () =>
    Effect.scoped(Effect.gen(function*() {
      const database = yield* freshPostgresUrl
      const sql = layerPostgresUrl(database.url)
      yield* Effect.provide(runMigrations, sql)
      const listener = yield* Layer.build(pgNotifyFeed(database.url))
      const changes = yield* Context.get(listener, ChangeFeed).subscribe
      const writer = yield* Layer.build(
        SqlRunStore.layer.pipe(Layer.provideMerge(pgNotifyFeed(database.url)), Layer.provideMerge(sql))
      )
      const store = Context.get(writer, RunStore)
      const client = Context.get(writer, SqlClient.SqlClient)
      const notices = yield* Effect.provide(makeNotice, writer)

      const first = runView({ key: { name: "committed-1" } })
      yield* store.createRun({ view: first, task: undefined })
      const rolledBack = yield* Effect.either(client.withTransaction(
        Effect.zipRight(
          notices.within(client, [{ action: { run: { ...first.run.key, name: "rolled-back" }, name: "a0" }, kind: "created" }]),
          Effect.fail("rolled back")
        )
      ))
      expect(Either.isLeft(rolledBack)).toBe(true)
      const second = runView({ key: { name: "committed-2" } })
      yield* store.createRun({ view: second, task: undefined })

      const received = yield* changes.pipe(Stream.take(2), Stream.runCollect, Effect.timeout("10 seconds"))
      expect(Chunk.toReadonlyArray(received).map((change) => [change.action.run.name, change.action.name, change.kind])).toEqual([
        ["committed-1", "a0", "created"],
        ["committed-2", "a0", "created"]
      ])
    })), 60_000)

  it.live("an action update (one statement, its notice inside it) reaches another replica's feed; an update that changes nothing sends none", () =>
    Effect.scoped(Effect.gen(function*() {
      const database = yield* freshPostgresUrl
      const sql = layerPostgresUrl(database.url)
      yield* Effect.provide(runMigrations, sql)
      const writer = yield* Layer.build(
        SqlRunStore.layer.pipe(Layer.provideMerge(pgNotifyFeed(database.url)), Layer.provideMerge(sql))
      )
      const store = Context.get(writer, RunStore)
      const view = runView({ key: { name: "updated-1" } })
      yield* store.createRun({ view, task: undefined })
      const listener = yield* Layer.build(pgNotifyFeed(database.url))
      const changes = yield* Context.get(listener, ChangeFeed).subscribe

      yield* store.updateAction(view.root.key, () => undefined)
      yield* store.updateAction(view.root.key, (current) => current)
      yield* store.updateAction(view.root.key, (current) => ({ ...current, attempts: current.attempts + 1 }))
      const other = runView({ key: { name: "created-2" } })
      yield* store.createRun({ view: other, task: undefined })

      const received = yield* changes.pipe(Stream.take(2), Stream.runCollect, Effect.timeout("10 seconds"))
      expect(Chunk.toReadonlyArray(received).map((change) => [change.action.run.name, change.action.name, change.kind])).toEqual([
        ["updated-1", "a0", "updated"],
        ["created-2", "a0", "created"]
      ])
    })), 60_000)
  it.live("the updates of one batch, written together, send their notices in order when it commits", () =>
    Effect.scoped(Effect.gen(function*() {
      const database = yield* freshPostgresUrl
      const sql = layerPostgresUrl(database.url)
      yield* Effect.provide(runMigrations, sql)
      const writer = yield* Layer.build(
        SqlRunStore.layer.pipe(Layer.provideMerge(pgNotifyFeed(database.url)), Layer.provideMerge(sql))
      )
      const store = Context.get(writer, RunStore)
      const view = runView({ key: { name: "batched-1" } })
      const child = childAction(view, "c1")
      yield* store.createRun({ view, task: undefined })
      yield* store.recordAction(child)
      const listener = yield* Layer.build(pgNotifyFeed(database.url))
      const changes = yield* Context.get(listener, ChangeFeed).subscribe

      const held = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(store.createRun({
        view: runView({ key: { name: "holder-1" } }),
        task: undefined,
        beforeCommit: Effect.zipRight(Deferred.succeed(held, undefined), Deferred.await(release))
      }))
      yield* Deferred.await(held)
      const more = (current: typeof child) => ({ ...current, attempts: current.attempts + 1 })
      const updates = [
        yield* submit(store.updateAction(view.root.key, more)),
        yield* submit(store.updateAction(child.key, () => undefined)),
        yield* submit(store.updateAction(child.key, more)),
        yield* submit(store.updateAction(view.root.key, more))
      ]
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)
      yield* Effect.forEach(updates, Fiber.join)

      const received = yield* changes.pipe(Stream.take(4), Stream.runCollect, Effect.timeout("10 seconds"))
      expect(Chunk.toReadonlyArray(received).map((change) => [change.action.run.name, change.action.name, change.kind])).toEqual([
        ["holder-1", "a0", "created"],
        ["batched-1", "a0", "updated"],
        ["batched-1", "c1", "updated"],
        ["batched-1", "a0", "updated"]
      ])
    })), 60_000)
})
