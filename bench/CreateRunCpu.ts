import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { benchDatabases } from "./BenchDatabase.js"
import { root, startService, waitUntilReady } from "./Processes.js"
import { RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import { createRunRequest, projects } from "./Requests.js"
import { connections } from "./Scenarios.js"

/**
 * The built service's CPU time per CreateRun: 64 clients create 50 runs each, and the service process's own CPU
 * time (user and system, from /proc) over the round, the dispatch of its runs included, is divided by the runs it
 * created. Unlike a rate, this hardly moves with what else the machine is doing, so it tells one version of
 * the write path from another in a few rounds. `npx tsx bench/CreateRunCpu.ts [--postgres] [rounds]`.
 */
const postgres = process.argv.includes("--postgres")
const rounds = Number(process.argv.find((arg) => /^\d+$/.test(arg)) ?? 5)
const work = mkdtempSync(join(tmpdir(), "runs-cpu-"))
const databases = benchDatabases({ postgres, work })

/** The process's CPU time so far, in µs (Linux: fields 14 and 15 of /proc/<pid>/stat, in clock ticks of 10 ms). */
const cpuMicros = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ")
  return (Number(fields[11]) + Number(fields[12])) * 10_000
}

const main = async () => {
  execFileSync(process.execPath, [join(root, "scripts", "bundle.mjs")], { cwd: root, stdio: "inherit" })
  await databases.create()
  const { baseUrl, file } = await databases.configFile()
  const service = startService(file, work)
  try {
    await waitUntilReady(`${baseUrl}/readyz`, service)
    const { clients, close } = connections(RunService, baseUrl, 64)
    const createAll = (tag: string) =>
      Promise.all(clients.map(async (client, worker) => {
        for (let n = 0; n < 50; n++) await client.createRun(createRunRequest(projects.create, `${tag}-${worker}-${n}`))
      }))
    await createAll("warm")
    const perRun: Array<number> = []
    for (let round = 1; round <= rounds; round++) {
      const before = cpuMicros(service.pid)
      const start = performance.now()
      await createAll(`r${round}`)
      const seconds = (performance.now() - start) / 1000
      // The runs' dispatch (a poll every 200 ms) finishes after the last answer.
      await new Promise((resolve) => setTimeout(resolve, 600))
      const used = (cpuMicros(service.pid) - before) / (64 * 50)
      perRun.push(used)
      console.log(`round ${round}: ${(64 * 50 / seconds).toFixed(0)} runs/s, ${used.toFixed(0)} µs of service CPU per run`)
    }
    close()
    perRun.sort((a, b) => a - b)
    console.log(`median ${perRun[Math.floor(perRun.length / 2)]!.toFixed(0)} µs per run (${postgres ? "postgres" : "sqlite"})`)
  } finally {
    await service.stop()
    await databases.dropAll()
    rmSync(work, { recursive: true, force: true })
  }
}

await main()
