import { SqlClient } from "@effect/sql"
import { expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import { makeWriteBatch } from "../../../src/adapters/sql/SqlWriteBatch.js"
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
  }
})
