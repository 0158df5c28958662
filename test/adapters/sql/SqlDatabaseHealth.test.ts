import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer, Redacted } from "effect"
import { createServer, type Socket } from "node:net"
import * as MemoryDatabaseHealth from "../../../src/adapters/memory/MemoryDatabaseHealth.js"
import { layerPostgres } from "../../../src/adapters/sql/SqlClients.js"
import * as SqlDatabaseHealth from "../../../src/adapters/sql/SqlDatabaseHealth.js"
import { DatabaseHealth } from "../../../src/ports/DatabaseHealth.js"
import { backends, describeBackends } from "../../support/backends.js"

const check = Effect.flatMap(DatabaseHealth, (health) => health.check)

const postgresAt = (port: number) =>
  SqlDatabaseHealth.layer.pipe(Layer.provide(layerPostgres({
    host: "127.0.0.1",
    port,
    dbname: "runs",
    username: "postgres",
    password: Redacted.make("hunter2"),
    extraOptions: "sslmode=disable",
    maxIdleConnections: 1,
    maxOpenConnections: 2,
    connMaxLifeTime: Duration.hours(1)
  })))

/** A TCP server that accepts connections and never answers; its port. */
const silentServer = Effect.acquireRelease(
  Effect.async<{ port: number; close: () => void }>((resume) => {
    const sockets = new Set<Socket>()
    const server = createServer((socket) => sockets.add(socket))
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      resume(Effect.succeed({ port, close: () => (sockets.forEach((socket) => socket.destroy()), server.close()) }))
    })
  }),
  (server) => Effect.sync(() => server.close())
)

describeBackends(
  "DatabaseHealth",
  backends({ memory: MemoryDatabaseHealth.layer, sql: SqlDatabaseHealth.layer }),
  (backend) => {
    it.live("answers OK", () => check.pipe(Effect.provide(backend.layer)))
  }
)

describe("DatabaseHealth [postgres] unreachable", () => {
  it.live("is DatabaseUnavailable, quickly and without the password, when nothing listens", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(check)
      expect(error._tag).toBe("DatabaseUnavailable")
      expect(error.reason).toContain("ECONNREFUSED")
      expect(error.reason).not.toContain("hunter2")
    }).pipe(Effect.provide(postgresAt(1)), Effect.timeout("5 seconds")))

  it.live("is DatabaseUnavailable after about 2 seconds when the server does not answer", () =>
    Effect.gen(function*() {
      const { port } = yield* silentServer
      const health = yield* Layer.build(postgresAt(port))
      const started = Date.now()
      const error = yield* Effect.flip(check.pipe(Effect.provide(health), Effect.timeout("5 seconds")))
      expect(error).toMatchObject({ _tag: "DatabaseUnavailable", reason: expect.stringContaining("did not answer") })
      expect(Date.now() - started).toBeLessThan(3000)
    }).pipe(Effect.scoped))
})
