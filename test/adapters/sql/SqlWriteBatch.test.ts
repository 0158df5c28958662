import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Metric, Runtime } from "effect"
import { makeWriteBatch, type WriteGroup } from "../../../src/adapters/sql/SqlWriteBatch.js"
import * as Metrics from "../../../src/ports/Metrics.js"
import { describeBackends, sqlBackends } from "../../support/backends.js"
import { submit } from "../../support/Fibers.js"

describeBackends("SqlWriteBatch", sqlBackends(), (backend) => {
  const setUp = Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE items (id INTEGER PRIMARY KEY)`
    const batch = yield* makeWriteBatch(sql, { inFlight: 1, maxWrites: 100 })
    const insert = (id: number) => sql`INSERT INTO items (id) VALUES (${id})`.pipe(Effect.asVoid)
    const ids = Effect.map(sql<{ id: number }>`SELECT id FROM items ORDER BY id`, (rows) => rows.map((row) => row.id))
    // A write held until `release`, so that the writes submitted meanwhile form the next batch.
    const held = yield* Deferred.make<void>()
    const release = yield* Deferred.make<void>()
    const holder = yield* Effect.fork(batch.run(
      Effect.zipRight(insert(0), Effect.zipRight(Deferred.succeed(held, undefined), Deferred.await(release)))
    ))
    yield* Deferred.await(held)
    return { sql, batch, insert, ids, holder, release: Deferred.succeed(release, undefined) }
  })

  it.scoped("a SQL error fails its write alone; the other writes of its batch commit", () =>
    Effect.gen(function*() {
      const { batch, holder, ids, insert, release } = yield* setUp
      const one = yield* submit(batch.run(insert(1)))
      const again = yield* submit(batch.run(insert(1)))
      const two = yield* submit(batch.run(Effect.zipRight(insert(2), insert(3))))
      yield* release
      yield* Fiber.join(holder)
      yield* Fiber.join(one)
      expect((yield* Effect.flip(Fiber.join(again)))._tag).toBe("SqlError")
      yield* Fiber.join(two)
      expect(yield* ids).toStrictEqual([0, 1, 2, 3])
    }).pipe(Effect.provide(backend.layer)))

  it.scoped("a write's own failure is its answer and undoes nothing of the others", () =>
    Effect.gen(function*() {
      const { batch, holder, ids, insert, release } = yield* setUp
      const one = yield* submit(batch.run(insert(1)))
      const refused = yield* submit(batch.run(Effect.fail("refused" as const)))
      const two = yield* submit(batch.run(insert(2)))
      yield* release
      yield* Fiber.join(holder)
      yield* Fiber.join(one)
      expect(yield* Effect.flip(Fiber.join(refused))).toBe("refused")
      yield* Fiber.join(two)
      expect(yield* ids).toStrictEqual([0, 1, 2])
    }).pipe(Effect.provide(backend.layer)))

  it.scoped("a caller interrupted while its write is queued drops it; the batch goes on without it", () =>
    Effect.gen(function*() {
      const { batch, holder, ids, insert, release } = yield* setUp
      const dropped = yield* submit(batch.run(insert(1)))
      const kept = yield* submit(batch.run(insert(2)))
      yield* Fiber.interrupt(dropped)
      yield* release
      yield* Fiber.join(holder)
      yield* Fiber.join(kept)
      expect(yield* ids).toStrictEqual([0, 2])
    }).pipe(Effect.provide(backend.layer)))

  it.scoped("writes of one group that arrive one after the other run as one call of its many, in their place", () =>
    Effect.gen(function*() {
      const { batch, holder, ids, insert, release, sql } = yield* setUp
      const calls: Array<ReadonlyArray<number>> = []
      const group: WriteGroup<number, number> = {
        one: (id) => Effect.as(insert(id), id),
        many: (list) =>
          Effect.sync(() => calls.push(list)).pipe(
            Effect.zipRight(sql`INSERT INTO items ${sql.insert(list.map((id) => ({ id })))}`),
            Effect.as(list.map((id) => id * 10))
          ),
        atomic: false
      }
      // 3 and 4 fail on their own if they run before 2 (and 6 if before 5).
      const after = (before: number, id: number) =>
        Effect.flatMap(ids, (now): Effect.Effect<void, SqlError | "out of order"> =>
          now.includes(before) ? insert(id) : Effect.fail("out of order"))
      const answers: Array<Effect.Effect<unknown, unknown>> = []
      const write = <A, E>(effect: Effect.Effect<A, E>) => Effect.map(submit(effect), (fiber) => answers.push(Fiber.join(fiber)))
      yield* write(batch.runIn(group, 1))
      yield* write(batch.runIn(group, 2))
      yield* write(batch.run(after(2, 3)))
      yield* write(batch.runIn(group, 4))
      yield* write(batch.run(after(4, 5)))
      yield* write(batch.runIn(group, 6))
      yield* write(batch.runIn(group, 7))
      yield* release
      yield* Fiber.join(holder)
      expect(yield* Effect.all(answers)).toStrictEqual([10, 20, undefined, 4, undefined, 60, 70])
      expect(calls).toStrictEqual([[1, 2], [6, 7]])
      expect(yield* ids).toStrictEqual([0, 1, 2, 3, 4, 5, 6, 7])
    }).pipe(Effect.provide(backend.layer)))

  it.scoped("a group's many runs under the span of the first of its writes whose caller's span is recorded", () =>
    Effect.gen(function*() {
      const { batch, holder, release } = yield* setUp
      const spanName = Effect.map(Effect.option(Effect.currentParentSpan), (span) =>
        span._tag === "Some" && span.value._tag === "Span" ? span.value.name : "none")
      const group: WriteGroup<number, string> = {
        one: () => spanName,
        many: (list) => Effect.map(spanName, (name) => list.map(() => name)),
        atomic: false
      }
      const writes = [
        yield* submit(batch.runIn(group, 1)),
        yield* submit(batch.runIn(group, 2).pipe(Effect.withSpan("second"))),
        yield* submit(batch.runIn(group, 3).pipe(Effect.withSpan("third")))
      ]
      yield* release
      yield* Fiber.join(holder)
      expect(yield* Effect.forEach(writes, Fiber.join)).toStrictEqual(["second", "second", "second"])
    }).pipe(Effect.provide(backend.layer)))

  it.scoped("a group's many that fails rolls its batch back; every write of it then runs again alone", () =>
    Effect.gen(function*() {
      const { batch, holder, ids, insert, release } = yield* setUp
      const group: WriteGroup<number, number> = {
        one: (id) => Effect.as(insert(id), id),
        many: (list) => Effect.zipRight(Effect.forEach(list, insert), Effect.fail("refused" as const)),
        atomic: false
      }
      const writes = [
        yield* submit(batch.run(Effect.as(insert(1), 1))),
        yield* submit(batch.runIn(group, 2)),
        yield* submit(batch.runIn(group, 3))
      ]
      yield* release
      yield* Fiber.join(holder)
      expect(yield* Effect.forEach(writes, Fiber.join)).toStrictEqual([1, 2, 3])
      expect(yield* ids).toStrictEqual([0, 1, 2, 3])
    }).pipe(Effect.provide(backend.layer)))

  it.scoped("a write that arrives in the turn of the event loop in which a batch took its first joins that batch", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE items (id INTEGER PRIMARY KEY)`
      const batch = yield* makeWriteBatch(sql, { inFlight: 1, maxWrites: 100 })
      const insert = (id: number) => sql`INSERT INTO items (id) VALUES (${id})`.pipe(Effect.asVoid)
      const transactions = Effect.map(Metric.value(Metrics.dbTransactionDuration), (state) => state.count)
      const before = yield* transactions
      // The second write is submitted by a callback of the turn in which the worker takes the first (queued before
      // the worker's own end-of-turn callback): without the wait, the first is committed alone.
      const runFork = Runtime.runFork(yield* Effect.runtime<never>())
      const second = yield* Deferred.make<void, SqlError>()
      setImmediate(() => runFork(Deferred.complete(second, batch.run(insert(2)))))
      yield* batch.run(insert(1))
      yield* Deferred.await(second)
      expect((yield* transactions) - before).toBe(1)
      expect(yield* Effect.map(sql<{ id: number }>`SELECT id FROM items ORDER BY id`, (rows) => rows.map((row) => row.id)))
        .toStrictEqual([1, 2])
    }).pipe(Effect.provide(backend.layer)))

  if (backend.name === "postgres") {
    it.scoped("writes that arrive while a batch commits are committed together, in one transaction", () =>
      Effect.gen(function*() {
        const { batch, holder, release, sql } = yield* setUp
        const txid = Effect.map(sql<{ id: string }>`SELECT txid_current()::text AS id`, (rows) => rows[0]!.id)
        const writes = yield* Effect.forEach(Array.from({ length: 5 }), () => submit(batch.run(txid)))
        yield* release
        yield* Fiber.join(holder)
        const ids = yield* Effect.forEach(writes, Fiber.join)
        expect(new Set(ids).size).toBe(1)
        // A lone write after them is a batch (a transaction) of its own.
        expect(ids).not.toContain(yield* batch.run(txid))
      }).pipe(Effect.provide(backend.layer)))

    it.scoped("a batch of nothing but an atomic group's writes runs them outside a transaction; with others, in theirs", () =>
      Effect.gen(function*() {
        const { batch, holder, release, sql } = yield* setUp
        const txid = Effect.map(sql<{ id: string }>`SELECT txid_current()::text AS id`, (rows) => rows[0]!.id)
        // Each answer: the transactions of two statements in a row.
        const group: WriteGroup<number, ReadonlyArray<string>> = {
          one: () => Effect.all([txid, txid]),
          many: (list) => Effect.map(Effect.all([txid, txid]), (ids) => list.map(() => ids)),
          atomic: true
        }
        const mixed = [
          yield* submit(batch.runIn(group, 1)),
          yield* submit(batch.run(Effect.map(txid, (id) => [id]))),
          yield* submit(batch.runIn(group, 2))
        ]
        yield* release
        yield* Fiber.join(holder)
        expect(new Set((yield* Effect.forEach(mixed, Fiber.join)).flat()).size).toBe(1)

        const held = yield* Deferred.make<void>()
        const hold = yield* Deferred.make<void>()
        const holding = yield* Effect.fork(batch.run(Effect.zipRight(Deferred.succeed(held, undefined), Deferred.await(hold))))
        yield* Deferred.await(held)
        const bare = yield* Effect.forEach([1, 2, 3], (n) => submit(batch.runIn(group, n)))
        yield* Deferred.succeed(hold, undefined)
        yield* Fiber.join(holding)
        const answers = yield* Effect.forEach(bare, Fiber.join)
        expect(answers[0]).toStrictEqual(answers[2])
        expect(answers[0]![0]).not.toBe(answers[0]![1])
        const lone = yield* batch.runIn(group, 4)
        expect(lone[0]).not.toBe(lone[1])
      }).pipe(Effect.provide(backend.layer)))
  }
})
