import { SqlClient } from "@effect/sql"
import { Code } from "@connectrpc/connect"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { channel } from "../../src/adapters/pg-notify/PgNotifyChangeFeed.js"
import { encodeNotifications } from "../../src/adapters/pg-notify/NotifyPayload.js"
import { layerPostgresUrl } from "../../src/adapters/sql/SqlClients.js"
import { type PgInstance, startPgInstance } from "../support/PgInstance.js"
import { createNamed, project } from "../support/RunRequests.js"
import { freePort, type ServiceProcess, startService, waitForStatus } from "../support/ServiceProcess.js"
import { postgresAdminUrl } from "../support/TestDatabases.js"
import { startWriteLoad, type WriteLoad } from "../support/WriteLoad.js"
import { call, clientsAt, openStream } from "../watch/WatchSupport.js"

// The suite runs a Postgres server of its own; TEST_POSTGRES_URL only says that Postgres suites are to run.
const adminUrl = postgresAdminUrl()

const sqlOn = <A>(instance: PgInstance, f: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>) =>
  Effect.flatMap(SqlClient.SqlClient, f).pipe(Effect.provide(layerPostgresUrl(instance.url)), Effect.orDie)

type RunsMessage = { readonly runs: ReadonlyArray<{ readonly action?: { readonly id?: { readonly run?: { readonly name: string } } } }> }
const names = (message: RunsMessage) => message.runs.map((run) => run.action?.id?.run?.name)

const describeLoad = (load: WriteLoad) => JSON.stringify({
  createRun: Object.fromEntries(load.createRun.counts),
  recordAction: Object.fromEntries(load.recordAction.counts),
  messages: [...load.createRun.messages, ...load.recordAction.messages]
})

describe.skipIf(adminUrl === undefined)("a Postgres outage under write load [postgres]", () => {
  it.live("calls are answered Unavailable while Postgres is down, and the service recovers by itself", () =>
    Effect.scoped(Effect.gen(function*() {
      const instance = yield* startPgInstance
      const port = yield* freePort
      const base = `http://127.0.0.1:${port}`
      const service: ServiceProcess = yield* startService({
        cwd: mkdtempSync(join(tmpdir(), "runs-outage-")),
        env: {
          DATABASE_POSTGRES_HOST: "127.0.0.1",
          DATABASE_POSTGRES_PORT: String(instance.port),
          DATABASE_POSTGRES_DBNAME: "postgres",
          DATABASE_POSTGRES_USERNAME: "postgres",
          DATABASE_POSTGRES_EXTRAOPTIONS: "sslmode=disable",
          RUNS_SERVER_PORT: String(port),
          // Warnings and errors only: an Internal answer is logged as an error, with its cause.
          LOGGER_LEVEL: "warning"
        }
      })
      // What a failure message shows: the calls' answers so far and both servers' logs.
      let started: WriteLoad | undefined
      const context = () => `\n--- load: ${started === undefined ? "not started" : describeLoad(started)}\n--- service:\n${service.output().slice(-6000)}\n--- postgres:\n${instance.log().slice(-3000)}`
      /** Polls `check` (a condition on what the test has seen) until it holds, at most `seconds`. */
      const until = (what: string, check: () => boolean, seconds = 15) =>
        Effect.suspend(() => (check() ? Effect.void : Effect.fail(what))).pipe(
          Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo(`${seconds} seconds`))),
          Effect.orDieWith(() => new Error(`not within ${seconds} s: ${what}${context()}`))
        )
      // Starting takes a while on a busy machine (tsx compiles the service first).
      yield* waitForStatus(`${base}/readyz`, 200, "40 seconds").pipe(Effect.orDieWith(() => new Error(`never ready${context()}`)))
      const clients = clientsAt(base)
      // A run nothing else writes to: a change to it can only reach a watcher through LISTEN/NOTIFY.
      yield* call(() => clients.runs.createRun(createNamed("notify-probe")))

      const load = yield* startWriteLoad(base, { workers: 8, timeoutMs: 15_000, prefix: "load" })
      started = load

      /** A watch of the project's runs, opened once the service listens for changes again, past its first message. */
      const openWatch = Effect.gen(function*() {
        const watch = yield* openStream((signal) =>
          clients.runs.watchRuns({ target: { case: "projectId", value: { organization: "", name: project.name, domain: project.domain } } }, { signal }))
        const first = yield* watch.raw
        if (first._tag !== "Message") return yield* Effect.fail(first)
        return watch
      }).pipe(
        Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("15 seconds"))),
        Effect.orDieWith((outcome) => new Error(`no watch could be opened: ${JSON.stringify(outcome)}${context()}`))
      )

      /** Reads the watch until it fails, and returns its code (messages about runs created before the stop come first). */
      const endOf = (watch: Effect.Effect.Success<typeof openWatch>) =>
        Effect.gen(function*() {
          while (true) {
            const next = yield* watch.raw
            if (next._tag === "Error") return next.error.code
            if (next._tag === "End") return undefined
          }
        })

      const outage = (round: number) =>
        Effect.gen(function*() {
          const before = load.runs.length
          yield* until(`runs created before outage ${round}`, () => load.runs.length >= before + 20)
          // Opened just before the stop, so it is read again well within the service's stall timeout (30 s).
          const watch = yield* openWatch

          yield* instance.stop
          const atStop = load.answered("Unavailable")
          yield* waitForStatus(`${base}/readyz`, 503).pipe(Effect.orDieWith(() => new Error(`readyz stayed 200${context()}`)))
          // Calls keep coming while it is down: they are refused, and answered Unavailable.
          yield* until(`calls answered Unavailable while down (round ${round})`, () => load.answered("Unavailable") >= atStop + 20)
          expect(yield* endOf(watch), `the open watch ends Unavailable (round ${round})`).toBe(Code.Unavailable)

          yield* instance.start
          yield* waitForStatus(`${base}/readyz`, 200).pipe(Effect.orDieWith(() => new Error(`readyz stayed 503${context()}`)))
          const runsAtRecovery = load.runs.length
          const actionsAtRecovery = load.actions.length
          yield* until(`writes succeed again after outage ${round}`, () =>
            load.runs.length >= runsAtRecovery + 20 && load.actions.length >= actionsAtRecovery + 20)

          // The service listens again: a change announced by another replica reaches a new watcher.
          const after = yield* openWatch
          const [payload] = encodeNotifications("another-replica", [{
            action: { run: { project: project.name, domain: project.domain, name: "notify-probe" }, name: "a0" },
            kind: "updated"
          }])
          yield* sqlOn(instance, (sql) => sql`SELECT pg_notify(${channel}, ${payload!})`)
          while (!names((yield* after.next) as RunsMessage).includes("notify-probe")) {
            // Runs the load creates meanwhile arrive too.
          }
          yield* after.cancel
          return runsAtRecovery
        })

      yield* outage(1)
      const lastRecovery = yield* outage(2)
      yield* load.stop

      expect(service.child.exitCode, `the service kept running${context()}`).toBe(null)
      const answeredWith = (counts: Map<string, number>) => [...counts.keys()].sort()
      expect(answeredWith(load.createRun.counts), `CreateRun answers${context()}`).toEqual(["OK", "Unavailable"])
      expect(answeredWith(load.recordAction.counts), `RecordAction answers${context()}`).toEqual(["OK", "Unavailable"])

      // Every write that was acknowledged is there. A CreateRun answered Unavailable was sent again until it was
      // answered OK, so every run of the load that is stored was acknowledged, once: none was committed without
      // its client learning of it, none twice.
      const stored = yield* sqlOn(instance, (sql) =>
        Effect.all({
          runs: sql<{ name: string }>`SELECT name FROM runs WHERE name LIKE 'load-%'`,
          actions: sql<{ run_name: string }>`SELECT run_name FROM actions WHERE name = 'c1'`
        }))
      const storedRuns = new Set(stored.runs.map((row) => row.name))
      const storedActions = new Set(stored.actions.map((row) => row.run_name))
      expect(load.runs.filter((name) => !storedRuns.has(name)), "acknowledged runs missing").toEqual([])
      expect(load.actions.filter((name) => !storedActions.has(name)), "acknowledged actions missing").toEqual([])
      expect([...storedRuns].filter((name) => !load.runs.includes(name)), "runs stored but never acknowledged").toEqual([])
      expect(new Set(load.runs).size, "runs acknowledged twice").toBe(load.runs.length)

      // The outbox worker went on: every run created since the last recovery was dispatched.
      const sinceRecovery = load.runs.slice(lastRecovery)
      yield* Effect.gen(function*() {
        const rows = yield* sqlOn(instance, (sql) =>
          sql<{ run_name: string }>`SELECT run_name FROM outbox WHERE state = 'delivered' AND run_name IN ${sql.in(sinceRecovery)}`)
        if (rows.length < sinceRecovery.length) return yield* Effect.fail(rows.length)
      }).pipe(
        Effect.retry(Schedule.spaced("200 millis").pipe(Schedule.upTo("15 seconds"))),
        Effect.orDieWith((delivered) => new Error(`${delivered} of ${sinceRecovery.length} dispatched${context()}`))
      )
      console.log(`outage: ${describeLoad(load)}; runs acknowledged ${load.runs.length}, found ${stored.runs.length}; child actions acknowledged ${load.actions.length}, found ${stored.actions.length}`)
    })), 90_000)
})
