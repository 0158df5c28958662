import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { SqlClient } from "@effect/sql"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { layerSqlite } from "../../src/adapters/sql/SqlClients.js"
import { freePort, startService, waitForStatus } from "../support/ServiceProcess.js"

const seedColumns: Record<string, ReadonlyArray<string>> = {
  runs: ["id", "org", "project", "domain", "name", "root_action_name", "trigger_org", "trigger_project",
    "trigger_domain", "trigger_name", "run_spec", "created_by_principal", "created_by_k8s_service_account",
    "created_at", "updated_at"],
  actions: ["id", "org", "project", "domain", "run_name", "name", "run_id", "parent_action_name", "action_type",
    "phase", "task_spec", "trace_spec", "condition_spec", "input_uri", "metadata", "created_at", "updated_at"],
  action_attempts: ["id", "action_id", "attempt_number", "phase", "start_time", "end_time", "outputs", "log_info",
    "log_context", "created_at", "updated_at"],
  cluster_events: ["id", "attempt_id", "occurred_at", "message", "created_at"],
  phase_transitions: ["id", "attempt_id", "phase", "start_time", "end_time", "created_at"]
}

const tempDir = () => mkdtempSync(join(tmpdir(), "runs-process-"))

describe("the service process", () => {
  it.live("starts on SQLite with no configuration, is healthy and ready, and stops on SIGTERM with exit 0", () =>
    Effect.scoped(Effect.gen(function*() {
      const cwd = tempDir()
      const port = yield* freePort
      const service = yield* startService({ cwd, env: { RUNS_SERVER_PORT: String(port) } })
      const health = yield* waitForStatus(`http://127.0.0.1:${port}/healthz`, 200)
      expect(yield* Effect.promise(() => health.text())).toBe("OK")
      yield* waitForStatus(`http://127.0.0.1:${port}/readyz`, 200)

      yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        for (const [table, columns] of Object.entries(seedColumns)) {
          const present = yield* sql<{ name: string }>`SELECT name FROM pragma_table_info(${table})`
          expect(present.map((row) => row.name), table).toEqual(expect.arrayContaining([...columns]))
        }
      }).pipe(Effect.provide(layerSqlite({ file: join(cwd, "runs.db") })))

      const stopping = Date.now()
      service.child.kill("SIGTERM")
      const code = yield* Effect.promise(() => service.exited)
      expect(code).toBe(0)
      expect(Date.now() - stopping).toBeLessThan(5000)
      expect(service.output()).toContain("closing the database")
      // npm start's --max-old-space-size=1024, plus V8's young generation.
      const heapLimit = Number(/heap limit (\d+) MB/.exec(service.output())?.[1])
      expect(heapLimit).toBeGreaterThanOrEqual(1024)
      expect(heapLimit).toBeLessThan(1200)
    })), 30_000)

  it.live("uses the file given with --config", () =>
    Effect.scoped(Effect.gen(function*() {
      const cwd = tempDir()
      const port = yield* freePort
      writeFileSync(join(cwd, "custom.yaml"), `runs:\n  server:\n    port: ${port}\ndatabase:\n  sqlite:\n    file: custom.db\n`)
      yield* startService({ cwd, args: ["--config", "custom.yaml"] })
      yield* waitForStatus(`http://127.0.0.1:${port}/readyz`, 200)
      const rows = yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ n: number }>`SELECT count(*) AS n FROM runs`).pipe(
        Effect.provide(layerSqlite({ file: join(cwd, "custom.db") }))
      )
      expect(rows).toEqual([{ n: 0 }])
    })), 30_000)

  it.live("stops at once on a bad value, printing one line that names the key", () =>
    Effect.scoped(Effect.gen(function*() {
      const cwd = tempDir()
      writeFileSync(join(cwd, "bad.yaml"), "runs:\n  server:\n    port: abc\n")
      const started = Date.now()
      const service = yield* startService({ cwd, args: ["--config", "bad.yaml"] })
      const code = yield* Effect.promise(() => service.exited)
      expect(code).not.toBe(0)
      expect(Date.now() - started).toBeLessThan(5000)
      const lines = service.output().trim().split("\n")
      expect(lines).toHaveLength(1)
      expect(lines[0]).toContain("runs.server.port")
    })), 30_000)
})
