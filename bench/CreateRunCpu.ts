import { toBinary } from "@bufbuild/protobuf"
import { execFileSync } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { benchDatabases } from "./BenchDatabase.js"
import { buildProgram, type Child, freePort, root, scriptNodeOptions, startBuilt, startService, waitForOutput, waitUntilReady } from "./Processes.js"
import { startReference } from "./Reference.js"
import { CreateRunResponseSchema, RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import { createRunRequest, projects } from "./Requests.js"
import { connections } from "./Scenarios.js"

/**
 * What a CreateRun costs in CPU: the server's and the bench client's, for the built service, the echo (the bare
 * connect-node server the bench's ratios divide by) and the framework-less reference, each loaded as the bench's
 * `create` scenario loads them (64 clients on connections of their own), 50 runs each per round. The server's CPU
 * (user and system, from /proc, the dispatch that follows the round included) and the client's (this process) are
 * divided by the runs of the round. Unlike a rate, a server's CPU per call hardly moves with what else the machine
 * is doing, so it tells one version of the write path from another in a few rounds; and with the machine's CPU
 * the limit, the echo's and the client's figures bound the ratio a server of a given cost can reach.
 * `npx tsx bench/CreateRunCpu.ts [--postgres] [--service-only] [rounds]`.
 */
const postgres = process.argv.includes("--postgres")
const serviceOnly = process.argv.includes("--service-only")
const rounds = Number(process.argv.find((arg) => /^\d+$/.test(arg)) ?? 5)
const clientCount = 64
const runsPerClient = 50
const work = mkdtempSync(join(tmpdir(), "runs-cpu-"))
const databases = benchDatabases({ postgres, work })
const children: Array<Child> = []

/**
 * CPU time so far, in µs, of a process or (with `thread`) of one of its threads; a process's main thread has its
 * id. Linux: fields 14 and 15 of /proc/<pid>/stat, in clock ticks of 10 ms.
 */
const cpuMicros = (pid: number, thread?: number) => {
  const path = thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`
  const fields = readFileSync(path, "utf8").replace(/^.*\) /, "").split(" ")
  return (Number(fields[11]) + Number(fields[12])) * 10_000
}

const median = (values: ReadonlyArray<number>) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

interface Figures {
  readonly rate: number
  readonly server: number
  /** The server's main thread, where JavaScript runs: with the machine's CPU to spare, what sets the rate. */
  readonly main: number
  readonly client: number
}

/** `rounds` rounds of CreateRuns against `url`, after one to warm up; the median of each figure. */
const measure = async (label: string, url: string, pid: number): Promise<Figures> => {
  const { clients, close } = connections(RunService, url, clientCount)
  const createAll = (tag: string) =>
    Promise.all(clients.map(async (client, worker) => {
      for (let n = 0; n < runsPerClient; n++) await client.createRun(createRunRequest(projects.create, `${tag}-${worker}-${n}`))
    }))
  const runs = clientCount * runsPerClient
  try {
    await createAll(`${label}-warm`)
    const figures: Array<Figures> = []
    for (let round = 1; round <= rounds; round++) {
      const server = cpuMicros(pid)
      const main = cpuMicros(pid, pid)
      const client = process.cpuUsage()
      const start = performance.now()
      await createAll(`${label}-r${round}`)
      const rate = runs / ((performance.now() - start) / 1000)
      const clientUsed = process.cpuUsage(client)
      // The runs' dispatch (a poll every 200 ms) finishes after the last answer.
      await new Promise((resolve) => setTimeout(resolve, 600))
      const used = {
        rate,
        server: (cpuMicros(pid) - server) / runs,
        main: (cpuMicros(pid, pid) - main) / runs,
        client: (clientUsed.user + clientUsed.system) / runs
      }
      figures.push(used)
      console.log(
        `${label} round ${round}: ${used.rate.toFixed(0)} runs/s; per run, ${used.server.toFixed(0)} µs of server CPU ` +
          `(${used.main.toFixed(0)} on its main thread) and ${used.client.toFixed(0)} µs of client CPU`
      )
    }
    return {
      rate: median(figures.map((f) => f.rate)),
      server: median(figures.map((f) => f.server)),
      main: median(figures.map((f) => f.main)),
      client: median(figures.map((f) => f.client))
    }
  } finally {
    close()
  }
}

const main = async () => {
  execFileSync(process.execPath, [join(root, "scripts", "bundle.mjs")], { cwd: root, stdio: "inherit" })
  await databases.create()
  const { baseUrl, file } = await databases.configFile()
  const service = startService(file, work)
  children.push(service)
  await waitUntilReady(`${baseUrl}/readyz`, service)
  const results: Array<[string, Figures]> = [["service", await measure("service", baseUrl, service.pid)]]
  if (!serviceOnly) {
    // The echo answers every CreateRun with one of the service's answers; the other methods' samples are left empty.
    const samples = join(work, "samples")
    mkdirSync(samples)
    const { clients: [client], close } = connections(RunService, baseUrl, 1)
    const sample = await client!.createRun(createRunRequest(projects.create, "sample")).finally(close)
    writeFileSync(join(samples, "createRun.bin"), toBinary(CreateRunResponseSchema, sample))
    for (const method of ["getRunDetails", "listRuns", "recordActionEvents", "watchRunDetails", "watchActions", "watchActionsUpdate"]) {
      writeFileSync(join(samples, `${method}.bin`), new Uint8Array())
    }
    await service.stop()
    const echoPort = await freePort()
    const echo = startBuilt(await buildProgram("EchoServer.ts", work), [String(echoPort), samples], work, scriptNodeOptions("serve"))
    children.push(echo)
    await waitForOutput(echo, "listening")
    results.push(["echo", await measure("echo", `http://127.0.0.1:${echoPort}`, echo.pid)])
    await echo.stop()
    const { client: referenceClient, database } = await databases.createReference()
    const reference = await startReference({
      work,
      database,
      client: referenceClient,
      samples,
      track: (child) => children.push(child)
    })
    results.push(["reference", await measure("reference", reference.url, reference.child.pid)])
  }
  console.log(`\nmedians of ${rounds} rounds (${postgres ? "postgres" : "sqlite"}):`)
  console.log("| server | runs/s | server µs/run | its main thread µs/run | client µs/run |")
  console.log("|---|---|---|---|---|")
  for (const [name, figures] of results) {
    console.log(`| ${name} | ${figures.rate.toFixed(0)} | ${figures.server.toFixed(0)} | ${figures.main.toFixed(0)} | ${figures.client.toFixed(0)} |`)
  }
}

try {
  await main()
} finally {
  await Promise.allSettled(children.map((child) => child.stop()))
  await databases.dropAll()
  rmSync(work, { recursive: true, force: true })
}
