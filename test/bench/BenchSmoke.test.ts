import { describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { join } from "node:path"
import { promisify } from "node:util"

const root = join(import.meta.dirname, "..", "..")

// The benchmark is a program, not a test of speed: this only checks that its quick form runs to the end and
// prints every figure (it exits 1 when a scenario had errors or lost a watch update).
describe("npm run bench -- --smoke", () => {
  it("builds the service, runs every scenario on a small database and prints each figure", async () => {
    const { stdout } = await promisify(execFile)("npm", ["run", "bench", "--silent", "--", "--smoke"], {
      cwd: root,
      timeout: 240_000,
      maxBuffer: 16 * 1024 * 1024
    })
    for (
      const figure of [
        "CreateRun RPS / echo",
        "GetRunDetails RPS / echo",
        "RecordActionEvents events/s / echo",
        "WatchRunDetails delivery p99 ms",
        "WatchRunDetails server peak RSS MB",
        "WatchActions delivery p99 ms",
        "start-up: ms to /readyz 200",
        "start-up: idle RSS MB",
        "ListRuns p50 at 1,000 / at 200",
        "ListRuns RPS / echo at 1,000"
      ]
    ) expect(stdout).toContain(`| ${figure}`)
    expect(stdout).toMatch(/figures written to \S+\.json/)
  }, 300_000)
})
