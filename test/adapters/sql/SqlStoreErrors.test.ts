import { SqlClient } from "@effect/sql"
import { SqlError } from "@effect/sql/SqlError"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Context, Effect, Either, Exit, Fiber, Layer, Option, Schedule } from "effect"
import pg from "pg"
import { layerPostgresUrl } from "../../../src/adapters/sql/SqlClients.js"
import { runMigrations } from "../../../src/adapters/sql/SqlMigrations.js"
import * as SqlRunStore from "../../../src/adapters/sql/SqlRunStore.js"
import { refail, retryingConflicts } from "../../../src/adapters/sql/SqlStoreErrors.js"
import { RunStore } from "../../../src/ports/RunStore.js"
import { runView, taskRecord } from "../../support/Fixtures.js"
import { freshPostgresUrl, postgresAdminUrl } from "../../support/TestDatabases.js"

/** A driver error as node-postgres builds one: an Error with the server's SQLSTATE (or the socket's code). */
const driverError = (message: string, code?: string) => Object.assign(new Error(message), code === undefined ? {} : { code })

const statementFailed = (cause: unknown) => new SqlError({ cause, message: "Failed to execute statement" })

/** What `refail` makes of an effect that ends with `cause`: the failure's tag, or "defect". */
const outcomeOf = (cause: Cause.Cause<unknown>) => {
  const exit = Effect.runSync(Effect.exit(refail(Effect.failCause(cause) as Effect.Effect<never, SqlError>)))
  if (Exit.isSuccess(exit)) return "success"
  return Option.match(Cause.failureOption(exit.cause), {
    onSome: (error) => (error as { _tag: string })._tag,
    onNone: () => (Cause.isDie(exit.cause) ? "defect" : "other")
  })
}

const connectivity: ReadonlyArray<readonly [string, unknown]> = [
  ["57P01 (fast shutdown)", driverError("terminating connection due to administrator command", "57P01")],
  ["57P02 (crash shutdown)", driverError("terminating connection due to unexpected postmaster exit", "57P02")],
  ["57P03 (cannot connect now)", driverError("the database system is shutting down", "57P03")],
  ["08006 (connection failure)", driverError("connection failure", "08006")],
  ["08001 (cannot establish)", driverError("could not establish connection", "08001")],
  ["ECONNREFUSED", driverError("connect ECONNREFUSED 127.0.0.1:5432", "ECONNREFUSED")],
  ["ECONNREFUSED on every address", new AggregateError([driverError("connect ECONNREFUSED ::1:5432", "ECONNREFUSED")], "")],
  ["a connection that ended", driverError("Connection terminated unexpectedly")],
  ["a broken client", driverError("Client has encountered a connection error and is not queryable")],
  ["a connect timeout", driverError("Connection terminated due to connection timeout")],
  ["a pool wait timeout", driverError("timeout exceeded when trying to connect")]
]

const notConnectivity: ReadonlyArray<readonly [string, unknown]> = [
  ["23505 (unique violation)", driverError("duplicate key value violates unique constraint", "23505")],
  ["42601 (syntax error)", driverError("syntax error at or near", "42601")],
  ["57014 (statement timeout)", driverError("canceling statement due to statement timeout", "57014")],
  ["22012 (division by zero)", driverError("division by zero", "22012")]
]

describe("refail", () => {
  for (const [name, cause] of connectivity) {
    it(`a statement failing with ${name} is StoreUnavailable`, () => {
      expect(outcomeOf(Cause.fail(statementFailed(cause)))).toBe("StoreUnavailable")
    })
    it(`a COMMIT or ROLLBACK failing with ${name} (a defect from withTransaction) is StoreUnavailable`, () => {
      expect(outcomeOf(Cause.die(statementFailed(cause)))).toBe("StoreUnavailable")
    })
  }

  for (const [name, cause] of notConnectivity) {
    it(`${name} stays a defect, failed or died`, () => {
      expect(outcomeOf(Cause.fail(statementFailed(cause)))).toBe("defect")
      expect(outcomeOf(Cause.die(statementFailed(cause)))).toBe("defect")
    })
  }

  it("a failure of the caller's own passes through, and a defect that is not a SqlError stays a defect", () => {
    expect(outcomeOf(Cause.fail({ _tag: "RunExists" }))).toBe("RunExists")
    expect(outcomeOf(Cause.die(new Error("Connection terminated unexpectedly")))).toBe("defect")
  })

  it("the reason names the driver's message, never the SQL", () => {
    const exit = Effect.runSync(Effect.exit(refail(Effect.die(statementFailed(
      driverError("Client has encountered a connection error and is not queryable")
    )))))
    expect(exit).toEqual(Exit.fail(expect.objectContaining({
      reason: "Failed to execute statement: Client has encountered a connection error and is not queryable"
    })))
  })
})

const adminUrl = postgresAdminUrl()

/** Ends the server process of the session `pid` and waits until it is gone, from a connection of its own. */
const terminate = (pid: number) =>
  Effect.promise(async () => {
    const admin = new pg.Client({ connectionString: adminUrl })
    await admin.connect()
    try {
      await admin.query("SELECT pg_terminate_backend($1, 5000)", [pid])
    } finally {
      await admin.end()
    }
  })

/** A client on its own pool, open until the scope closes. */
const clientOf = (url: string) => Effect.map(Layer.build(layerPostgresUrl(url)), (context) => Context.get(context, SqlClient.SqlClient))

const backendPid = (sql: SqlClient.SqlClient) =>
  Effect.map(sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`, (rows) => rows[0]!.pid)

describe.skipIf(adminUrl === undefined)("refail on Postgres [postgres]", () => {
  it.live("a COMMIT on a connection the server ended is StoreUnavailable, and the next transaction works", () =>
    Effect.scoped(Effect.gen(function*() {
      const database = yield* freshPostgresUrl
      const sql = yield* clientOf(database.url)
      const lost = yield* Effect.either(refail(sql.withTransaction(
        Effect.flatMap(backendPid(sql), (pid) => terminate(pid))
      )))
      expect(Either.getLeft(lost).pipe(Option.map((error) => error._tag))).toEqual(Option.some("StoreUnavailable"))
      expect(yield* refail(sql.withTransaction(backendPid(sql)))).toBeGreaterThan(0)
    })))

  it.live("a statement that is wrong inside a transaction stays a defect", () =>
    Effect.scoped(Effect.gen(function*() {
      const database = yield* freshPostgresUrl
      const sql = yield* clientOf(database.url)
      const exit = yield* Effect.exit(refail(sql.withTransaction(sql`SELECT 1 / 0`)))
      expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
    })))

  it.live("CreateRun whose connection is ended before it commits fails StoreUnavailable, writes nothing, and works again", () =>
    Effect.scoped(Effect.gen(function*() {
      const database = yield* freshPostgresUrl
      const client = layerPostgresUrl(database.url)
      const context = yield* Layer.build(
        SqlRunStore.layer.pipe(Layer.provideMerge(Layer.provideMerge(Layer.effectDiscard(runMigrations), client)))
      )
      const store = Context.get(context, RunStore)
      const sql = Context.get(context, SqlClient.SqlClient)
      const view = runView()
      // The run's transaction loses its connection in the middle: what follows fails, and so does the ROLLBACK.
      const lost = yield* Effect.either(store.createRun({
        view,
        task: taskRecord(),
        beforeCommit: Effect.flatMap(backendPid(sql), (pid) => terminate(pid)).pipe(Effect.orDie)
      }))
      expect(Either.getLeft(lost).pipe(Option.map((error) => error._tag))).toEqual(Option.some("StoreUnavailable"))
      expect(Option.isNone(yield* store.getRun(view.run.key))).toBe(true)
      yield* store.createRun({ view, task: taskRecord() })
      expect(Option.isSome(yield* store.getRun(view.run.key))).toBe(true)
    })))

  it.live("a transaction Postgres ends to break a deadlock runs again and commits", () =>
    Effect.scoped(Effect.gen(function*() {
      const database = yield* freshPostgresUrl
      const sql = yield* clientOf(database.url)
      yield* sql`CREATE TABLE counters (id int PRIMARY KEY, value int NOT NULL)`
      yield* sql`INSERT INTO counters VALUES (1, 0), (2, 0)`
      // The other side: locks row 1 first and row 2 second, and waits 10 s before it looks for a deadlock, so
      // that ours (1 s, the default) is the one Postgres ends.
      const other = new pg.Client({ connectionString: database.url })
      yield* Effect.acquireRelease(Effect.promise(() => other.connect()), () => Effect.promise(() => other.end()))
      yield* Effect.promise(() => other.query("BEGIN"))
      yield* Effect.promise(() => other.query("SET LOCAL deadlock_timeout = '10s'"))
      yield* Effect.promise(() => other.query("UPDATE counters SET value = value + 1 WHERE id = 1"))
      let tries = 0
      // Ours locks row 2, then waits for row 1.
      const ours = yield* retryingConflicts(sql.withTransaction(Effect.gen(function*() {
        tries++
        yield* sql`UPDATE counters SET value = value + 1 WHERE id = 2`
        yield* sql`UPDATE counters SET value = value + 1 WHERE id = 1`
      }))).pipe(Effect.fork)
      // Once ours waits for a lock, the other asks for row 2: a deadlock, which ends ours; the other then commits.
      const waiting = sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock'`
      yield* waiting.pipe(Effect.repeat({ until: (rows) => rows[0]!.n > 0, schedule: Schedule.spaced("10 millis") }))
      const otherDone = Effect.promise(() =>
        other.query("UPDATE counters SET value = value + 1 WHERE id = 2").then(() => other.query("COMMIT"))
      )
      yield* otherDone
      yield* Fiber.join(ours)
      expect(tries).toBe(2)
      const rows = yield* sql<{ id: number; value: number }>`SELECT id, value FROM counters ORDER BY id`
      expect(rows.map((row) => row.value)).toEqual([2, 2])
    })))
})

describe("retryingConflicts", () => {
  it("a deadlock is run again at most three times, and any other failure not at all", () => {
    const failing = (code: string) => {
      let tries = 0
      const exit = Effect.runSync(Effect.exit(retryingConflicts(Effect.suspend(() => {
        tries++
        return Effect.fail(statementFailed(driverError("failed", code)))
      }))))
      return { failed: Exit.isFailure(exit), tries }
    }
    expect(failing("40P01")).toEqual({ failed: true, tries: 4 })
    expect(failing("40001")).toEqual({ failed: true, tries: 4 })
    expect(failing("23505")).toEqual({ failed: true, tries: 1 })
  })
})
