import { createClient } from "@connectrpc/connect"
import { createConnectTransport } from "@connectrpc/connect-node"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import { layerSqlite } from "../../src/adapters/sql/SqlClients.js"
import { createNamed } from "../support/RunRequests.js"
import { freePort, startService, waitForStatus } from "../support/ServiceProcess.js"
import { eventually, makeTestExecutor } from "../support/TestExecutor.js"

describe("the service process with runs.dispatcher: actions", () => {
  it.live("hands a created run to the executor within a second, records it delivered, and stops cleanly", () =>
    Effect.scoped(Effect.gen(function*() {
      const executor = yield* makeTestExecutor
      const cwd = mkdtempSync(join(tmpdir(), "runs-dispatch-"))
      const port = yield* freePort
      const service = yield* startService({
        cwd,
        env: { RUNS_SERVER_PORT: String(port), RUNS_DISPATCHER: "actions", RUNS_ACTIONSSERVICEURL: executor.url }
      })
      yield* waitForStatus(`http://127.0.0.1:${port}/readyz`, 200)
      const transport = createConnectTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: "2" })
      const client = createClient(RunService, transport)
      yield* Effect.promise(() => client.createRun(createNamed("from-the-process")))
      yield* eventually("the executor has the run", Effect.sync(() => executor.calls.length > 0), "1 second")
      expect(executor.calls.map((call) => [call.kind, call.key])).toEqual([
        ["enqueue", "flytesnacks/development/from-the-process/a0"]
      ])

      const outbox = Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql<{ kind: string; state: string }>`SELECT kind, state FROM outbox ORDER BY id`).pipe(
          Effect.provide(layerSqlite({ file: join(cwd, "runs.db") }))
        )
      yield* eventually("the request is recorded delivered", Effect.map(outbox, (rows) => rows[0]?.state === "delivered"))
      service.child.kill("SIGTERM")
      expect(yield* Effect.promise(() => service.exited)).toBe(0)
      expect(service.output()).toContain(`dispatcher: actions at ${executor.url}`)
    })), 30_000)
})
