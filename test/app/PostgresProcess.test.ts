import { SqlClient } from "@effect/sql"
import { createClient } from "@connectrpc/connect"
import { createGrpcTransport } from "@connectrpc/connect-node"
import { RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { layerPostgresUrl } from "../../src/adapters/sql/SqlClients.js"
import { createNamed } from "../support/RunRequests.js"
import { freePort, startService, waitForStatus } from "../support/ServiceProcess.js"
import { makeTcpProxy } from "../support/TcpProxy.js"
import { freshPostgresUrl, postgresAdminUrl } from "../support/TestDatabases.js"

const adminUrl = postgresAdminUrl()

const postgresEnv = (url: URL, port: number): Record<string, string> => ({
  DATABASE_POSTGRES_HOST: url.hostname,
  DATABASE_POSTGRES_PORT: String(port),
  DATABASE_POSTGRES_DBNAME: url.pathname.slice(1),
  DATABASE_POSTGRES_USERNAME: decodeURIComponent(url.username || "postgres"),
  DATABASE_POSTGRES_PASSWORD: decodeURIComponent(url.password),
  DATABASE_POSTGRES_EXTRAOPTIONS: "sslmode=disable"
})

/** Two service processes started at the same moment on one database, both ready; their ports. */
const startReadyReplicas = (url: URL) =>
  Effect.gen(function*() {
    const ports = [yield* freePort, yield* freePort]
    yield* Effect.forEach(ports, (port) =>
      startService({
        cwd: mkdtempSync(join(tmpdir(), "runs-pg-")),
        env: { ...postgresEnv(url, Number(url.port || 5432)), RUNS_SERVER_PORT: String(port) }
      }), { concurrency: "unbounded" })
    yield* Effect.forEach(ports, (port) => waitForStatus(`http://127.0.0.1:${port}/readyz`, 200), {
      concurrency: "unbounded"
    })
    return ports
  })

describe.skipIf(adminUrl === undefined)("the service process [postgres]", () => {
  it.live("two replicas started at the same moment both become ready and migrate once", () =>
    Effect.scoped(Effect.gen(function*() {
      const database = yield* freshPostgresUrl
      const url = new URL(database.url)
      yield* startReadyReplicas(url)
      const rows = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql<{ migration_id: number }>`SELECT migration_id FROM effect_sql_migrations`
      ).pipe(Effect.provide(layerPostgresUrl(database.url)))
      expect(rows.map((row) => row.migration_id).sort()).toEqual([1, 2])
    })), 60_000)

  it.live("answers /readyz 503 while Postgres is unreachable and 200 again when it is back", () =>
    Effect.scoped(Effect.gen(function*() {
      const database = yield* freshPostgresUrl
      const url = new URL(database.url)
      const proxy = yield* makeTcpProxy({ host: url.hostname, port: Number(url.port || 5432) })
      const port = yield* freePort
      const readyz = `http://127.0.0.1:${port}/readyz`
      yield* startService({
        cwd: mkdtempSync(join(tmpdir(), "runs-pg-")),
        env: { ...postgresEnv(url, proxy.port), RUNS_SERVER_PORT: String(port) }
      })
      yield* waitForStatus(readyz, 200)
      yield* proxy.cut
      const down = yield* waitForStatus(readyz, 503)
      expect(yield* Effect.promise(() => down.text())).toMatch(/^not ready: /)
      yield* proxy.restore
      yield* waitForStatus(readyz, 200)
      yield* waitForStatus(`http://127.0.0.1:${port}/healthz`, 200)
    })), 60_000)

  it.live("starts while Postgres is unreachable and becomes ready when it comes up", () =>
    Effect.scoped(Effect.gen(function*() {
      const database = yield* freshPostgresUrl
      const url = new URL(database.url)
      const proxy = yield* makeTcpProxy({ host: url.hostname, port: Number(url.port || 5432) })
      yield* proxy.cut
      const port = yield* freePort
      yield* startService({
        cwd: mkdtempSync(join(tmpdir(), "runs-pg-")),
        env: { ...postgresEnv(url, proxy.port), RUNS_SERVER_PORT: String(port) }
      })
      yield* waitForStatus(`http://127.0.0.1:${port}/healthz`, 200)
      yield* waitForStatus(`http://127.0.0.1:${port}/readyz`, 503)
      yield* proxy.restore
      yield* waitForStatus(`http://127.0.0.1:${port}/readyz`, 200)
    })), 60_000)

  it.live("a watcher on one replica process sees a run created through another", () =>
    Effect.scoped(Effect.gen(function*() {
      const database = yield* freshPostgresUrl
      const url = new URL(database.url)
      const ports = yield* startReadyReplicas(url)
      const [a, b] = ports.map((port) => createClient(RunService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` })))
      const abort = new AbortController()
      const watch = b!.watchRuns({ target: { case: "org", value: "" } }, { signal: abort.signal })[Symbol.asyncIterator]()
      const first = yield* Effect.promise(() => watch.next())
      expect(first.done === true ? undefined : first.value.runs).toEqual([])
      yield* Effect.promise(() => a!.createRun(createNamed("from-replica-a")))
      const next = yield* Effect.promise(() => watch.next()).pipe(Effect.timeout("10 seconds"))
      expect(next.done === true ? [] : next.value.runs.map((run) => run.action?.id?.run?.name)).toEqual(["from-replica-a"])
      abort.abort()
    })), 60_000)
})
