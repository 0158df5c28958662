import { describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"

const root = join(import.meta.dirname, "..", "..")

/** Runs `npm run bench -- --smoke`, writing the watch timings to `timesFile`, and checks what it printed and wrote. */
const smokeRun = async (timesFile: string) => {
  const { stdout } = await promisify(execFile)("npm", ["run", "bench", "--silent", "--", "--smoke"], {
    cwd: root,
    env: { ...process.env, BENCH_WATCH_TIMES: timesFile },
    timeout: 240_000,
    maxBuffer: 16 * 1024 * 1024
  })
  for (
    const figure of [
      "CreateRun RPS / echo",
      "CreateRun reference / echo",
      "GetRunDetails RPS / echo",
      "RecordActionEvents events/s / echo",
      "WatchRunDetails delivery p99 ms",
      "WatchRunDetails server peak RSS MB",
      "WatchActions delivery p99 ms",
      "start-up: ms to /readyz 200",
      "start-up: idle RSS MB",
      "ListRuns p50 at 1,000 / at 200",
      "ListRuns RPS / echo at 1,000",
      "fanout: RecordAction RPS / echo",
      "fanout: UpdateActionStatus RPS / echo",
      "fanout: live watchers complete",
      "fanout: delivery p99 ms",
      "fanout: 201-action snapshot to 2 watchers ms"
    ]
  ) expect(stdout).toContain(`| ${figure}`)
  // The framework-less reference takes its turn in CreateRun's rounds, and every answer it gave was right.
  expect(stdout).toMatch(/\| reference \(no framework\): CreateRun +\| \d+ req\/s .*\| 0 +\| 1 rounds; ratio to echo /)
  // The smoke plan's fanout: 200 children over 8 connections, 4 live watchers, 2 late ones; on both servers.
  for (const server of ["echo: ", ""]) {
    expect(stdout).toMatch(new RegExp(`\\| ${server}fanout: RecordAction, 200 children over 8 connections +\\| \\d+ req/s`))
    expect(stdout).toMatch(new RegExp(`\\| ${server}fanout: UpdateActionStatus \\(RUNNING, then SUCCEEDED\\), 400 calls +\\| \\d+ req/s`))
    expect(stdout).toMatch(new RegExp(`\\| ${server}fanout: SUCCEEDED shown to 4 live watchers.*\\| [0-4] of 4 complete; \\d+/800 delivered`))
  }
  expect(stdout).toMatch(/\| fanout: 201-action snapshot to 2 late watchers opened together .*\| [0-2] of 2 complete/)
  expect(stdout).toMatch(/figures written to \S+\.json/)
  // The smoke plan: WatchRunDetails 20 updates, each shown on 2 streams; WatchActions 10 updates on 20 streams.
  const [header, ...rows] = readFileSync(timesFile, "utf8").trimEnd().split("\n")
  expect(header).toBe("server,scenario,kind,sent_ms,ms")
  const counts = new Map<string, number>()
  for (const row of rows) {
    const [server, scenario, kind, sent, ms] = row.split(",")
    expect(Number(sent)).toBeGreaterThan(Date.now() - 600_000)
    expect(Number(ms)).toBeGreaterThanOrEqual(0)
    counts.set(`${server} ${scenario} ${kind}`, (counts.get(`${server} ${scenario} ${kind}`) ?? 0) + 1)
  }
  expect(Object.fromEntries(counts)).toEqual(Object.fromEntries(["echo", "service"].flatMap((server) => [
    [`${server} WatchRunDetails call`, 20],
    [`${server} WatchRunDetails delivery`, 40],
    [`${server} WatchActions call`, 10],
    [`${server} WatchActions delivery`, 200]
  ])))
}

// The benchmark is a program, not a test of speed: this only checks that its quick form runs to the end and
// prints every figure (it exits 1 when a scenario had errors or lost a watch update).
describe("npm run bench -- --smoke", () => {
  it("builds the service, runs every scenario on a small database and prints each figure", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bench-smoke-"))
    const timesFile = join(dir, "times.csv")
    try {
      await smokeRun(timesFile)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 300_000)
})
