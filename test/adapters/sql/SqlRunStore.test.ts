import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Fiber, Layer, Schedule } from "effect"
import pg from "pg"
import { layerPostgresUrl, layerSqlite } from "../../../src/adapters/sql/SqlClients.js"
import { makeListings } from "../../../src/adapters/sql/SqlListQuery.js"
import { runMigrations } from "../../../src/adapters/sql/SqlMigrations.js"
import * as SqlRunStore from "../../../src/adapters/sql/SqlRunStore.js"
import type { ListFilter, RunScope } from "../../../src/domain/ListQuery.js"
import { ActionPhase } from "../../../src/domain/Phase.js"
import { RunStore } from "../../../src/ports/RunStore.js"
import { describeBackends, sqlBackends } from "../../support/backends.js"
import { at, attempt, childAction, comparable, filter, listQuery, payload, runView, taskRecord } from "../../support/Fixtures.js"
import { freshPostgresUrl, freshSqliteFile, postgresAdminUrl } from "../../support/TestDatabases.js"

type Client = Layer.Layer<SqlClient.SqlClient, unknown>

const withStore = <A, E>(client: Client, body: Effect.Effect<A, E, RunStore | SqlClient.SqlClient>) =>
  Effect.provide(
    body,
    SqlRunStore.layer.pipe(Layer.provideMerge(Layer.provideMerge(Layer.effectDiscard(runMigrations), client)))
  )

/** The same JSON path on both databases: `->`/`->>` on JSONB, `json_extract` on SQLite. */
const jsonPath = (sql: SqlClient.SqlClient, column: string, path: ReadonlyArray<string | number>) =>
  sql.literal(sql.onDialectOrElse({
    pg: () => `${column}${path.map((step, i) => `${i === path.length - 1 ? "->>" : "->"}${typeof step === "number" ? step : `'${step}'`}`).join("")}`,
    orElse: () => `json_extract(${column}, '$${path.map((step) => (typeof step === "number" ? `[${step}]` : `.${step}`)).join("")}')`
  }))

const planOf = (sql: SqlClient.SqlClient, statement: { compile: () => readonly [string, ReadonlyArray<unknown>] }) => {
  const [text, params] = statement.compile()
  return sql.onDialectOrElse({
    pg: () => sql.unsafe<{ "QUERY PLAN": string }>(`EXPLAIN ${text}`, params).pipe(
      Effect.map((rows) => rows.map((row) => row["QUERY PLAN"]).join("\n"))
    ),
    orElse: () => sql.unsafe<{ detail: string }>(`EXPLAIN QUERY PLAN ${text}`, params).pipe(
      Effect.map((rows) => rows.map((row) => row.detail).join("\n"))
    )
  })
}

// A scan of the table, or a sort of every row it yields. Sorting the last ORDER BY terms within equal index
// prefixes (SQLite's "LAST TERM"/"RIGHT PART", Postgres' Incremental Sort) stays within the page.
const fullScanOrSort = /SCAN a\b|Seq Scan|USE TEMP B-TREE FOR ORDER BY|(^|-> +)Sort +\(/m

describeBackends("SqlRunStore", sqlBackends(), (backend) => {
  it.effect("reads go on working after a migration adds columns while the service runs (prepared statements)", () =>
    withStore(backend.layer, Effect.gen(function*() {
      const store = yield* RunStore
      const sql = yield* SqlClient.SqlClient
      const view = runView()
      const task = taskRecord()
      yield* store.createRun({ view, task })
      // Each read many times at once, so that every pooled connection has prepared it.
      const many = <A, E>(read: Effect.Effect<A, E>) =>
        Effect.all(Array.from({ length: 12 }, () => read), { concurrency: "unbounded" })
      const readAll = Effect.all([
        many(store.getRun(view.run.key)),
        many(store.getAction(view.root.key)),
        many(store.getActionDetails(view.root.key)),
        many(store.getRunDetails(view.run.key)),
        many(store.getTask(task.key))
      ])
      const before = yield* readAll
      for (const table of ["runs", "actions", "tasks"]) yield* sql`ALTER TABLE ${sql(table)} ADD COLUMN added TEXT`
      const after = yield* readAll
      expect(comparable(after)).toStrictEqual(comparable(before))
      expect(after[4][0]).toMatchObject({ _tag: "Some" })
    })))

  it.effect("stores readable JSON beside the binary; log info as a framed repeated field and a JSON array", () =>
    withStore(backend.layer, Effect.gen(function*() {
      const store = yield* RunStore
      const sql = yield* SqlClient.SqlClient
      const view = runView({ root: { errorInfo: payload({ message: "boom" }) } })
      yield* store.createRun({ view, task: undefined })
      const long = payload({ name: "long", uri: "x".repeat(300) })
      const logged = attempt(1, { logInfo: [payload({ name: "stdout" }), long] })
      yield* store.putAttempts(view.root.key, [logged])
      const [run] = yield* sql`SELECT ${jsonPath(sql, "run_spec", ["rawDataStorage", "rawDataPrefix"])} AS v FROM runs`
      expect(run).toEqual({ v: "s3://bucket/raw" })
      const [action] = yield* sql`SELECT ${jsonPath(sql, "task_spec", ["taskTemplate", "id", "name"])} AS task,
        ${jsonPath(sql, "error_info", ["message"])} AS error FROM actions`
      expect(action).toEqual({ task: "my.task", error: "boom" })
      const [row] = yield* sql<{ first: string; second: string; pb: Uint8Array }>`SELECT
        ${jsonPath(sql, "log_info", [0, "name"])} AS first, ${jsonPath(sql, "log_info", [1, "name"])} AS second,
        log_info_pb AS pb FROM action_attempts`
      expect([row?.first, row?.second]).toEqual(["stdout", "long"])
      const [short] = logged.logInfo
      const framed = [0x0a, short!.binary.length, ...short!.binary, 0x0a, 0x80 | (long.binary.length % 128),
        long.binary.length >> 7, ...long.binary]
      expect(Array.from(row!.pb)).toEqual(framed)
      expect(comparable(yield* store.listAttempts(view.root.key))).toStrictEqual(comparable([logged]))
    })))

  it.effect("the README's inspection queries show a created run, its root QUEUED and a TASK", () =>
    withStore(backend.layer, Effect.gen(function*() {
      const store = yield* RunStore
      const sql = yield* SqlClient.SqlClient
      const view = runView({ createdAt: at(1) })
      yield* store.createRun({ view, task: undefined })
      const runs = yield* sql`SELECT id, org, project, domain, name, root_action_name, created_at FROM runs
        ORDER BY created_at DESC;`
      expect(runs).toMatchObject([
        { org: "org", project: "proj", domain: "development", name: view.run.key.name, root_action_name: "a0" }
      ])
      expect(new Date(String(runs[0]!["created_at"])).getTime()).toBe(at(1).getTime())
      const actions = yield* sql`SELECT id, org, project, domain, run_name, name, phase, action_type FROM actions
        ORDER BY created_at DESC;`
      expect(actions).toMatchObject([
        { run_name: view.run.key.name, name: "a0", phase: "PHASE_QUEUED", action_type: "TASK" }
      ])
    })))

  it.effect("keeps phase_number, duration_ms and the abort columns in step with the phase", () =>
    withStore(backend.layer, Effect.gen(function*() {
      const store = yield* RunStore
      const sql = yield* SqlClient.SqlClient
      const view = runView({ createdAt: at(10), phase: ActionPhase.RUNNING })
      yield* store.createRun({ view, task: undefined })
      const columns = sql`SELECT phase, phase_number, duration_ms, abort_reason, aborted_by FROM actions`
      expect(yield* columns).toEqual([
        { phase: "PHASE_RUNNING", phase_number: 4, duration_ms: null, abort_reason: null, aborted_by: null }
      ])
      yield* store.abort(view.root.key, { reason: "stop", abortedBy: "carol" }, at(12))
      expect(yield* columns).toEqual([
        { phase: "PHASE_ABORTED", phase_number: 7, duration_ms: 2000, abort_reason: "stop", aborted_by: "carol" }
      ])
    })))

  it.live("concurrent creates of one name: exactly one succeeds, the others are RunExists", () =>
    withStore(backend.layer, Effect.gen(function*() {
      const store = yield* RunStore
      for (let round = 0; round < 5; round++) {
        const key = runView().run.key
        const create = (i: number) => store.createRun({ view: runView({ key, org: `org-${i}` }), task: undefined })
        const results = yield* Effect.all(Array.from({ length: 6 }, (_, i) => Effect.either(create(i))), {
          concurrency: "unbounded"
        })
        expect(results.filter(Either.isRight)).toHaveLength(1)
        expect(results.filter(Either.isLeft).map((result) => result.left._tag)).toEqual(Array(5).fill("RunExists"))
      }
    })))

  it.effect("substring filters take %, _, \\, *, ? and [ literally and are case-sensitive unless asked", () =>
    withStore(backend.layer, Effect.gen(function*() {
      const store = yield* RunStore
      const creators = ["a%b", "axb", "a_b", "a\\b", "ab", "a*b", "a?b", "a[b]", "A%B"]
      for (const [i, createdBy] of creators.entries()) {
        yield* store.createRun({ view: runView({ createdBy, createdAt: at(i) }), task: undefined })
      }
      const creatorsOf = (given: ListFilter) =>
        Effect.map(store.listRuns({ kind: "all" }, listQuery({ filters: [given] })), (page) =>
          page.items.map((view) => view.root.createdBy).sort())
      const cases: ReadonlyArray<readonly [ListFilter, ReadonlyArray<string>]> = [
        [filter("created_by", "CONTAINS", "%"), ["A%B", "a%b"]],
        [filter("created_by", "CONTAINS", "a%"), ["a%b"]],
        [filter("created_by", "CONTAINS", "_"), ["a_b"]],
        [filter("created_by", "CONTAINS", "\\"), ["a\\b"]],
        [filter("created_by", "CONTAINS", "*"), ["a*b"]],
        [filter("created_by", "CONTAINS", "?"), ["a?b"]],
        [filter("created_by", "CONTAINS", "[b"), ["a[b]"]],
        [filter("created_by", "ENDS_WITH", "\\b"), ["a\\b"]],
        [filter("created_by", "ENDS_WITH", "%B"), ["A%B"]],
        [filter("created_by", "ENDS_WITH", "_b"), ["a_b"]],
        [filter("created_by", "NOT_ENDS_WITH", "b"), ["A%B", "a[b]"]],
        [filter("created_by", "CONTAINS_CASE_INSENSITIVE", "a%B"), ["A%B", "a%b"]],
        [filter("created_by", "CONTAINS_CASE_INSENSITIVE", "_"), ["a_b"]]
      ]
      for (const [given, expected] of cases) {
        expect([given, yield* creatorsOf(given)]).toEqual([given, [...expected].sort()])
      }
    })))

  it.effect("the default ListRuns of a project, with or without a phase filter, reads an index, not a sort", () =>
    withStore(backend.layer, Effect.gen(function*() {
      const store = yield* RunStore
      const sql = yield* SqlClient.SqlClient
      const phases = [ActionPhase.QUEUED, ActionPhase.RUNNING, ActionPhase.SUCCEEDED, ActionPhase.FAILED]
      yield* Effect.forEach(Array.from({ length: 3000 }, (_, i) => i), (i) =>
        store.createRun({
          view: runView({ key: { project: `proj-${i % 10}` }, createdAt: at(i), phase: phases[i % phases.length]! }),
          task: undefined
        }), { concurrency: 8, discard: true })
      yield* sql`ANALYZE`
      const listings = makeListings(sql)
      const scope: RunScope = { kind: "project", project: "proj-3", domain: "development" }
      const newestFirst = listQuery({ limit: 20 })
      const { items, next } = yield* store.listRuns(scope, newestFirst)
      expect(next).toBeDefined()
      const oldestFirst = { ...newestFirst, order: newestFirst.order.map((key) => ({ ...key, direction: "ASC" as const })) }
      const running = [filter("phase", "EQUAL", ActionPhase.RUNNING)]
      for (const query of [
        newestFirst,
        { ...newestFirst, after: next },
        oldestFirst,
        { ...newestFirst, filters: running },
        { ...newestFirst, filters: running, after: next }
      ]) {
        const plan = yield* planOf(sql, listings.runs(scope, query))
        expect(plan, plan).toMatch(/actions_root_(scope|phase|created)_idx/)
        expect(plan, plan).not.toMatch(fullScanOrSort)
      }
      const actionsPlan = yield* planOf(sql, listings.actions(items[0]!.run.key, newestFirst))
      expect(actionsPlan, actionsPlan).toMatch(/actions_run_created_idx/)
      expect(actionsPlan, actionsPlan).not.toMatch(fullScanOrSort)
    })), 60_000)
})

describe("SqlRunStore while the database is unavailable", () => {
  it.live("a Postgres that cannot be reached is StoreUnavailable with a short reason, not a defect", () =>
    Effect.gen(function*() {
      const store = yield* RunStore
      const error = yield* Effect.flip(store.getRun({ project: "p", domain: "d", name: "r" }))
      expect(error._tag).toBe("StoreUnavailable")
      expect(error.reason).toContain("ECONNREFUSED")
      expect(error.reason).not.toMatch(/SELECT|secret/)
      const created = yield* Effect.flip(store.createRun({ view: runView(), task: undefined }))
      expect(created._tag).toBe("StoreUnavailable")
    }).pipe(
      Effect.provide(SqlRunStore.layer.pipe(Layer.provide(layerPostgresUrl("postgres://postgres:secret@127.0.0.1:1/runs")))),
      Effect.timeout("10 seconds")
    ))

  it.live("a SQLite database locked past the busy timeout is StoreUnavailable", () =>
    Effect.gen(function*() {
      const file = yield* freshSqliteFile
      const other = yield* Effect.provide(SqlClient.SqlClient, Layer.succeedContext(yield* Layer.build(layerSqlite({ file }))))
      yield* Effect.provideService(runMigrations, SqlClient.SqlClient, other)
      yield* other`BEGIN IMMEDIATE`
      yield* Effect.addFinalizer(() => Effect.orDie(other`ROLLBACK`))
      yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`PRAGMA busy_timeout = 50`
        const store = yield* RunStore
        const error = yield* Effect.flip(store.createRun({ view: runView(), task: undefined }))
        expect(error).toMatchObject({ _tag: "StoreUnavailable", reason: expect.stringContaining("locked") })
      }).pipe(Effect.provide(SqlRunStore.layer.pipe(Layer.provideMerge(layerSqlite({ file })))))
    }).pipe(Effect.scoped, Effect.timeout("10 seconds")))
})

describe.skipIf(postgresAdminUrl() === undefined)("SqlRunStore racing a deletion [postgres]", () => {
  it.live("an action recorded while its run is being deleted waits, then finds the run gone (ActionMissing)", () =>
    Effect.scoped(Effect.gen(function*() {
      const database = yield* freshPostgresUrl
      const other = new pg.Client({ connectionString: database.url })
      yield* Effect.acquireRelease(Effect.promise(() => other.connect()), () => Effect.promise(() => other.end()))
      yield* withStore(layerPostgresUrl(database.url), Effect.gen(function*() {
        const store = yield* RunStore
        const sql = yield* SqlClient.SqlClient
        const view = runView()
        yield* store.createRun({ view, task: undefined })
        // A deletion of the run in progress on another connection (as retention deletes: actions, then the run).
        yield* Effect.promise(async () => {
          await other.query("BEGIN")
          await other.query("DELETE FROM actions WHERE run_name = $1", [view.run.key.name])
          await other.query("DELETE FROM runs WHERE name = $1", [view.run.key.name])
        })
        const recorded = yield* Effect.fork(Effect.either(store.recordAction(childAction(view, "c0"))))
        const waiting = sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock'`
        yield* waiting.pipe(Effect.repeat({ until: (rows) => rows[0]!.n > 0, schedule: Schedule.spaced("10 millis") }))
        yield* Effect.promise(() => other.query("COMMIT"))
        const result = yield* Fiber.join(recorded)
        expect(Either.getLeft(result).pipe((left) => left._tag === "Some" ? left.value._tag : "none")).toBe("ActionMissing")
      }))
    })))
})
