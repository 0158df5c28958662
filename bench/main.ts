/**
 * `npm run bench [-- --postgres] [-- --smoke]`: starts the built service on a temporary database, loads it
 * from this process over Connect on HTTP/2, measures each hot path against a bare connect-node server
 * answering the same methods with constant responses ("echo"), prints the figures and writes them as JSON.
 */
import { createClient } from "@connectrpc/connect"
import { createConnectTransport } from "@connectrpc/connect-node"
import { execFileSync } from "node:child_process"
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import { benchDatabases } from "./BenchDatabase.js"
import type { LoadFigures } from "./Measure.js"
import {
  buildProgram,
  type Child,
  freePort,
  peakRss,
  root,
  rssMb,
  scriptNodeOptions,
  startBuilt,
  startService,
  waitForOutput,
  waitIdle,
  waitUntilReady
} from "./Processes.js"
import { type Check, machineFacts, render, type Row } from "./Report.js"
import { createRunRequest, projects, runId } from "./Requests.js"
import { captureSamples } from "./Samples.js"
import * as Fanout from "./Fanout.js"
import * as Scenarios from "./Scenarios.js"
import { startReference } from "./Reference.js"
import { seededRunName, seedWith } from "./Seed.js"

const args = process.argv.slice(2)
const postgres = args.includes("--postgres")
const smoke = args.includes("--smoke")
const database = postgres ? "postgres" : "sqlite"
const onlyIndex = args.indexOf("--only")
/** `--only create,details,events,watches,fanout,list`: some scenarios (list includes the start-up on the large database). */
const only = onlyIndex >= 0 ? new Set((args[onlyIndex + 1] ?? "").split(",")) : undefined
const selected = (name: string) => only === undefined || only.has(name)

const plan = smoke
  ? {
    load: { concurrency: 4, warmupMs: 100, measureMs: 300 },
    rounds: 1,
    smallList: 200,
    largeList: 1000,
    watchRuns: { streams: 20, runs: 10, updatesPerSecond: 20, warmupSeconds: 0.25, seconds: 1 },
    watchActions: { streams: 20, children: 5, updatesPerSecond: 10, warmupSeconds: 0.25, seconds: 1 },
    fanout: { children: 200, connections: 8, liveWatchers: 4, lateWatchers: 2, catchUpSeconds: 10 }
  }
  : {
    // The service's hot paths are compiled by V8 during the warm-up; only the steady state is measured.
    // Echo and service alternate, three rounds each: the machine's drift (these machines are shared) falls on both.
    load: { concurrency: 64, warmupMs: 1500, measureMs: 3000 },
    rounds: 3,
    smallList: 10_000,
    largeList: 1_000_000,
    watchRuns: { streams: 1000, runs: 100, updatesPerSecond: 100, warmupSeconds: 2, seconds: 10 },
    watchActions: { streams: 1000, children: 20, updatesPerSecond: 10, warmupSeconds: 2, seconds: 10 },
    fanout: { children: 10_000, connections: 32, liveWatchers: 20, lateWatchers: 10, catchUpSeconds: 60 }
  }

const say = (line: string) => process.stdout.write(`${line}\n`)
const count = (n: number) => n.toLocaleString("en-US")
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`

const work = mkdtempSync(join(tmpdir(), "runs-bench-"))
const children: Array<Child> = []
const databases = benchDatabases({ postgres, work })

const startRunsService = async (file: string, baseUrl: string) => {
  const service = startService(file, work)
  children.push(service)
  const readyMs = await waitUntilReady(`${baseUrl}/readyz`, service)
  return { service, readyMs }
}

const rows: Array<Row> = []
const checks: Array<Check> = []
let broken = false

const loadRow = (scenario: string, figures: LoadFigures, unit: string, peakRssMb?: number, note?: string): Row => {
  if (figures.errors > 0) {
    broken = true
    say(`  ${scenario}: ${figures.errors} errors, the first: ${figures.firstError}`)
  }
  const row: Row = {
    scenario,
    throughput: { value: figures.throughput, unit },
    p50Ms: figures.p50Ms,
    p99Ms: figures.p99Ms,
    errors: figures.errors,
    ...(peakRssMb === undefined ? {} : { peakRssMb }),
    ...(note === undefined ? {} : { note })
  }
  rows.push(row)
  say(`  ${scenario}: ${figures.throughput.toFixed(0)} ${unit}, p50 ${figures.p50Ms.toFixed(2)} ms, p99 ${figures.p99Ms.toFixed(2)} ms`)
  return row
}

const check = (measure: string, value: number, target: string, met: boolean | undefined, shown?: string) => {
  checks.push({ measure, value, target, met, ...(shown === undefined ? {} : { shown }) })
}

/** Lets the machine finish what the previous scenario left (e.g. dispatching CreateRun's runs) first. */
const settle = async () => {
  // The smoke run checks that the bench works, often beside other tests: it measures nothing worth waiting for.
  if (smoke) return
  const waited = await waitIdle()
  if (waited > 1000) say(`  (waited ${seconds(waited)} for the machine to be idle)`)
}

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN
}

/** Rounds merged: mean throughput, median p50 and p99, errors summed (the first one kept). */
const merged = (rounds: ReadonlyArray<LoadFigures>): LoadFigures => ({
  calls: rounds.reduce((sum, round) => sum + round.calls, 0),
  throughput: rounds.reduce((sum, round) => sum + round.throughput, 0) / rounds.length,
  p50Ms: median(rounds.map((round) => round.p50Ms)),
  p99Ms: median(rounds.map((round) => round.p99Ms)),
  errors: rounds.reduce((sum, round) => sum + round.errors, 0),
  firstError: rounds.find((round) => round.firstError !== undefined)?.firstError
})

/** A server measured beside the service, in the same rounds. */
interface Beside {
  readonly url: string
  readonly pid: number
}

/**
 * The echo server and the service under the same load, in alternating rounds (echo, service, echo, ...), so
 * that both see the same machine: the ratio is the median of the rounds' ratios. With `reference`, the
 * framework-less server takes its turn after the service's in each round. `run` gets the round number so that a
 * scenario writing data can keep each round's apart.
 */
const pair = async (
  name: string,
  unit: string,
  servicePid: number,
  echoUrl: string,
  serviceUrl: string,
  run: (baseUrl: string, round: number) => Promise<LoadFigures>,
  reference?: Beside
) => {
  say(`${name}`)
  const echoRounds: Array<LoadFigures> = []
  const serviceRounds: Array<LoadFigures> = []
  const referenceRounds: Array<LoadFigures> = []
  const stop = peakRss(servicePid)
  const stopReference = reference === undefined ? undefined : peakRss(reference.pid)
  // Each round starts on an idle machine: what a service round leaves running (the outbox dispatching the runs
  // CreateRun made) would otherwise fall on the echo's next round.
  for (let round = 0; round < plan.rounds; round++) {
    await settle()
    echoRounds.push(await run(echoUrl, round))
    await settle()
    serviceRounds.push(await run(serviceUrl, round))
    if (reference === undefined) continue
    await settle()
    referenceRounds.push(await run(reference.url, round))
  }
  const ratiosOf = (rounds: ReadonlyArray<LoadFigures>) =>
    rounds.map((figures, round) => figures.throughput / echoRounds[round]!.throughput)
  const note = (ratios: ReadonlyArray<number>) =>
    `${plan.rounds} rounds; ratio to echo ${ratios.map((ratio) => ratio.toFixed(2)).join(", ")}`
  const ratios = ratiosOf(serviceRounds)
  const echo = merged(echoRounds)
  const service = merged(serviceRounds)
  loadRow(`echo: ${name}`, echo, unit)
  const row = loadRow(name, service, unit, stop(), note(ratios))
  const referenceRatios = ratiosOf(referenceRounds)
  if (stopReference !== undefined) {
    loadRow(`reference (no framework): ${name}`, merged(referenceRounds), unit, stopReference(), note(referenceRatios))
  }
  return { echo, service, ratio: median(ratios), row, referenceRatio: median(referenceRatios) }
}

interface Context {
  readonly file: string
  readonly baseUrl: string
  readonly echoUrl: string
  readonly echo: Child
  readonly samples: string
  service: Child
}

/** The framework-less reference (`ReferenceServer.ts`) on a fresh database of its own. */
const reference = async (samples: string) => {
  const { client, database: target } = await databases.createReference()
  return startReference({ work, database: target, client, samples, track: (child) => children.push(child) })
}

const throughputScenarios = async (context: Context) => {
  const { baseUrl, echoUrl } = context
  const pid = () => context.service.pid
  if (selected("create")) {
    const started = await reference(context.samples)
    const create = await pair(
      "CreateRun",
      "req/s",
      pid(),
      echoUrl,
      baseUrl,
      (url, round) =>
        Scenarios.createRuns(url, plan.load, `${url === echoUrl ? "echo" : "run"}${round}`, url !== echoUrl),
      { url: started.url, pid: started.child.pid }
    ).finally(() => started.child.stop())
    check("CreateRun RPS / echo", create.ratio, postgres ? ">= 0.35" : ">= 0.50", create.ratio >= (postgres ? 0.35 : 0.5))
    // How close the service is to what this machine allows for CreateRun's own work: no target.
    check("CreateRun reference / echo", create.referenceRatio, "(report)", undefined)
  }
  if (selected("details")) {
    const details = await pair("GetRunDetails (10 attempts, 50 events)", "req/s", pid(), echoUrl, baseUrl, (url) =>
      Scenarios.getRunDetails(url, plan.load))
    check("GetRunDetails RPS / echo", details.ratio, ">= 0.60", details.ratio >= 0.6)
  }
  if (selected("events")) {
    const events = await pair("RecordActionEvents (100 per batch)", "events/s", pid(), echoUrl, baseUrl, (url, round) =>
      Scenarios.recordEvents(url, plan.load, round))
    check(
      "RecordActionEvents events/s / echo",
      events.ratio,
      postgres ? "(report)" : ">= 0.25",
      postgres ? undefined : events.ratio >= 0.25
    )
  }
}

const watchRow = (name: string, result: { figures: Scenarios.WatchFigures; peakRssMb?: number }) => {
  const { figures } = result
  const lost = figures.expected - figures.delivered
  if (figures.errors > 0 || lost > 0) {
    // Updates still undelivered 5 s after the last one are a figure of an overloaded run; in the smoke run,
    // with a handful of streams, they are a fault.
    if (figures.errors > 0 || smoke) broken = true
    say(`  ${name}: ${figures.errors} errors (${figures.firstError ?? "none"}), ${lost} of ${figures.expected} deliveries missing`)
  }
  rows.push({
    scenario: name,
    throughput: { value: figures.throughput, unit: "msgs/s" },
    p50Ms: figures.p50Ms,
    p99Ms: figures.p99Ms,
    ...(result.peakRssMb === undefined ? {} : { peakRssMb: result.peakRssMb }),
    errors: figures.errors,
    note: `${count(figures.updates)} updates, ${count(figures.delivered)}/${count(figures.expected)} delivered`
  })
  say(`  ${name}: p50 ${figures.p50Ms.toFixed(2)} ms, p99 ${figures.p99Ms.toFixed(2)} ms, ${count(figures.delivered)}/${
    count(figures.expected)
  } delivered${result.peakRssMb === undefined ? "" : `, peak RSS ${result.peakRssMb.toFixed(0)} MB`}`)
}

/** `BENCH_WATCH_TIMES`: a CSV file of every timed watch update's call and deliveries (`Scenarios.WatchTimes`). */
const timesFile = process.env["BENCH_WATCH_TIMES"]

const writeTimes = (server: "echo" | "service", name: string, times: Scenarios.WatchTimes) => {
  if (timesFile === undefined) return
  // The scenario's name up to its colon: the rest has commas.
  const scenario = name.split(":")[0]
  const lines = (kind: string, rows: Scenarios.WatchTimes["calls"]) =>
    rows.map(([sent, ms]) => `${server},${scenario},${kind},${sent.toFixed(1)},${ms.toFixed(2)}\n`).join("")
  appendFileSync(timesFile, lines("call", times.calls) + lines("delivery", times.deliveries))
}

/**
 * Each watch scenario on the echo server first (a bare connect-node server pushing the same messages to the
 * same streams: what this machine can deliver at all), then on the service.
 */
const watchScenarios = async (context: Context) => {
  if (!selected("watches")) return
  if (timesFile !== undefined) writeFileSync(timesFile, "server,scenario,kind,sent_ms,ms\n")
  // The streams' side of the load runs in worker threads, bundled like the echo server (Scenarios.watchLoad).
  const workerFile = await buildProgram("WatchWorker.ts", work)
  const sampler = () => peakRss(context.service.pid)
  // The echo server's peak too: what this machine's Node and connect-node take to hold the same streams.
  const echoSampler = () => peakRss(context.echo.pid)
  const watchPair = async (
    name: string,
    run: (
      baseUrl: string,
      whileLoaded: () => () => number
    ) => Promise<{ figures: Scenarios.WatchFigures; peakRssMb: number; times: Scenarios.WatchTimes }>
  ) => {
    say(name)
    await settle()
    const echoed = await run(context.echoUrl, echoSampler)
    watchRow(`echo: ${name}`, echoed)
    writeTimes("echo", name, echoed.times)
    const result = await run(context.baseUrl, sampler)
    watchRow(name, result)
    writeTimes("service", name, result.times)
    return result
  }
  const w = plan.watchRuns
  const runs = await watchPair(
    `WatchRunDetails: ${count(w.streams)} streams, ${w.runs} runs, ${w.updatesPerSecond} updates/s`,
    (url, whileLoaded) => Scenarios.watchRunDetails(url, w, whileLoaded, workerFile)
  )
  check("WatchRunDetails delivery p99 ms", runs.figures.p99Ms, "<= 100", runs.figures.p99Ms <= 100)
  check("WatchRunDetails server peak RSS MB", runs.peakRssMb, "<= 300", runs.peakRssMb <= 300)
  const a = plan.watchActions
  const actions = await watchPair(
    `WatchActions: ${count(a.streams)} streams, 1 run, ${a.updatesPerSecond} updates/s`,
    (url, whileLoaded) => Scenarios.watchActions(url, a, whileLoaded, workerFile)
  )
  check("WatchActions delivery p99 ms", actions.figures.p99Ms, "<= 250", actions.figures.p99Ms <= 250)
}

/** How the streams that ended ended, each message once with how many ended so: "18 x resource_exhausted: ...". */
const endingsSummary = (ended: ReadonlyArray<string>) => {
  const counts = new Map<string, number>()
  for (const line of ended) {
    const message = line.replace(/^watcher \d+: /, "")
    counts.set(message, (counts.get(message) ?? 0) + 1)
  }
  return Array.from(counts, ([message, n]) => `${n} x ${message}`).join("; ")
}

/**
 * A cut-off watcher is a figure of the service (it reports how many kept up), not a fault of the bench; a
 * failed write is (`loadRow`).
 */
const liveRow = (name: string, live: Fanout.LiveFigures, peakRssMb: number) => {
  const ended = live.ended.length === 0 ? "" : `; ended: ${endingsSummary(live.ended)}`
  for (const line of live.ended) say(`  ${name}: ${line}`)
  rows.push({
    scenario: name,
    p50Ms: live.p50Ms,
    p99Ms: live.p99Ms,
    peakRssMb,
    errors: live.ended.length,
    note: `${live.complete} of ${live.watchers} complete; ${count(live.delivered)}/${count(live.expected)} delivered${ended}`
  })
  say(`  ${name}: ${live.complete} of ${live.watchers} complete, ${count(live.delivered)}/${count(live.expected)} delivered, p50 ${
    live.p50Ms.toFixed(2)
  } ms, p99 ${live.p99Ms.toFixed(2)} ms, peak RSS ${peakRssMb.toFixed(0)} MB`)
}

/**
 * The fanout: one run's children written by an executor over many connections while live watchers follow it,
 * then late watchers reading the finished tree (`Fanout`). One round each on the echo server and the service
 * (each is long: 10,000 children, 30,000 calls), their phases alternating (echo's records, the service's, echo's
 * updates, the service's) so that the machine's drift falls on both; the late watchers only on the service,
 * whose snapshot is the tree.
 */
const fanoutScenario = async (context: Context) => {
  if (!selected("fanout")) return
  const f = plan.fanout
  const workerFile = await buildProgram("FanoutWorker.ts", work)
  say(`fanout: ${count(f.children)} children over ${f.connections} connections, ${f.liveWatchers} live watchers, ${f.lateWatchers} late`)
  await settle()
  const echo = await Fanout.open(context.echoUrl, f, workerFile, "fanout-echo", () => peakRss(context.echo.pid))
  const service = await Fanout.open(context.baseUrl, f, workerFile, "fanout", () => peakRss(context.service.pid))
    .catch(async (error: unknown) => {
      await echo.close()
      throw error
    })
  const phases = async () => {
    const echoRecord = await echo.record()
    const serviceRecord = await service.record()
    // What the service's writes left (dispatching the new actions) does not fall on the echo's phase.
    await settle()
    const echoUpdate = await echo.update()
    const echoWatched = await echo.watched()
    const serviceUpdate = await service.update()
    const serviceWatched = await service.watched()
    return { echoRecord, serviceRecord, echoUpdate, echoWatched, serviceUpdate, serviceWatched }
  }
  const { echoRecord, serviceRecord, echoUpdate, echoWatched, serviceUpdate, serviceWatched } = await phases().finally(() =>
    Promise.all([echo.close(), service.close()])
  )
  const late = await Fanout.late(context.baseUrl, f, workerFile, "fanout")

  const records = `fanout: RecordAction, ${count(f.children)} children over ${f.connections} connections`
  const updates = `fanout: UpdateActionStatus (RUNNING, then SUCCEEDED), ${count(2 * f.children)} calls`
  const recordRatio = serviceRecord.throughput / echoRecord.throughput
  const updateRatio = serviceUpdate.throughput / echoUpdate.throughput
  const note = (ratio: number) => `1 round, after the echo's; ratio to echo ${ratio.toFixed(2)}`
  loadRow(`echo: ${records}`, echoRecord, "req/s")
  loadRow(records, serviceRecord, "req/s", undefined, note(recordRatio))
  loadRow(`echo: ${updates}`, echoUpdate, "req/s")
  loadRow(updates, serviceUpdate, "req/s", undefined, note(updateRatio))
  const watched = `fanout: SUCCEEDED shown to ${f.liveWatchers} live watchers, from the write's answer`
  liveRow(`echo: ${watched}`, echoWatched.live, echoWatched.peakRssMb)
  liveRow(watched, serviceWatched.live, serviceWatched.peakRssMb)
  const tree = `${count(f.children + 1)}-action snapshot to ${f.lateWatchers}`
  const lateEnded = late.ended.length === 0 ? "" : `; ended: ${endingsSummary(late.ended)}`
  for (const line of late.ended) say(`  fanout: late ${line}`)
  rows.push({
    scenario: `fanout: ${tree} late watchers opened together`,
    errors: late.ended.length,
    note: `${late.complete} of ${late.watchers} complete; first in ${late.minMs.toFixed(0)} ms, last in ${
      late.maxMs.toFixed(0)
    } ms; every first message in ${late.firstMessageMs.toFixed(0)} ms${lateEnded}`
  })
  say(`  fanout: ${tree} late watchers: ${late.complete} of ${late.watchers} complete, first in ${late.minMs.toFixed(0)} ms, last in ${
    late.maxMs.toFixed(0)
  } ms, every first message in ${late.firstMessageMs.toFixed(0)} ms`)

  const rate = postgres ? 0.35 : 0.5
  check("fanout: RecordAction RPS / echo", recordRatio, `>= ${rate.toFixed(2)}`, recordRatio >= rate)
  check("fanout: UpdateActionStatus RPS / echo", updateRatio, `>= ${rate.toFixed(2)}`, updateRatio >= rate)
  const { live } = serviceWatched
  check(
    "fanout: live watchers complete",
    live.complete,
    `${live.watchers} of ${live.watchers}`,
    live.complete === live.watchers,
    `${live.complete} of ${live.watchers}`
  )
  check("fanout: delivery p99 ms", live.p99Ms, "<= 250", live.p99Ms <= 250)
  check(`fanout: ${tree} watchers ms`, late.maxMs, "<= 1000", late.maxMs <= 1000)
}

/** ListRuns at the small size, then the service stopped, the project grown to the large size, the start-up
 * of the built service on it timed, and ListRuns again. */
const listScenarios = async (context: Context, template: ReturnType<typeof runId>, firstCreatedAt: Date) => {
  if (!selected("list")) return 0
  const { baseUrl, echoUrl } = context
  const listName = (size: number) => `ListRuns (limit 50, phase filter, newest first) at ${count(size)} runs`
  const small = await pair(listName(plan.smallList), "req/s", context.service.pid, echoUrl, baseUrl, (url) =>
    Scenarios.listRuns(url, plan.load))

  await context.service.stop()
  const seedStart = performance.now()
  await seedWith(databases.serviceClient(), { template, from: plan.smallList, to: plan.largeList, firstCreatedAt })
  const seedMs = performance.now() - seedStart
  say(`seeded ${count(plan.largeList - plan.smallList)} more runs in ${seconds(seedMs)}`)
  await databases.analyze()

  say(`start-up on ${count(plan.largeList)} runs`)
  const restarted = await startRunsService(context.file, baseUrl)
  context.service = restarted.service
  await new Promise((resolve) => setTimeout(resolve, 1000))
  const idleRss = rssMb(context.service.pid) ?? Number.NaN
  rows.push({
    scenario: `start-up of the built service on ${count(plan.largeList)} runs`,
    peakRssMb: idleRss,
    note: `ready in ${restarted.readyMs.toFixed(0)} ms; RSS 1 s after ready`
  })
  say(`  ready in ${restarted.readyMs.toFixed(0)} ms, idle RSS ${idleRss.toFixed(0)} MB`)
  const targets = !postgres
  check("start-up: ms to /readyz 200", restarted.readyMs, targets ? "<= 1500" : "(report)", targets ? restarted.readyMs <= 1500 : undefined)
  check("start-up: idle RSS MB", idleRss, targets ? "<= 150" : "(report)", targets ? idleRss <= 150 : undefined)

  const large = await pair(listName(plan.largeList), "req/s", context.service.pid, echoUrl, baseUrl, (url) =>
    Scenarios.listRuns(url, plan.load))
  const growth = large.service.p50Ms / small.service.p50Ms
  check(`ListRuns p50 at ${count(plan.largeList)} / at ${count(plan.smallList)}`, growth, "<= 2.0", growth <= 2)
  check(`ListRuns RPS / echo at ${count(plan.largeList)}`, large.ratio, ">= 0.30", large.ratio >= 0.3)
  return seedMs
}

const main = async () => {
  const started = performance.now()
  say(`runs-service bench (${database}${smoke ? ", smoke" : ""}); work folder ${work}`)
  // The bundle `npm run build` makes, without its type check: what runs is the same, and the tests check types.
  say("bundling the service (dist/runs-service.mjs, as npm run build makes it)")
  execFileSync(process.execPath, [join(root, "scripts", "bundle.mjs")], { cwd: root, stdio: "inherit" })
  await databases.create()

  const { baseUrl, file } = await databases.configFile()
  const { service } = await startRunsService(file, baseUrl)

  const template = runId(projects.list, seededRunName(0))
  await createClient(RunService, createConnectTransport({ baseUrl, httpVersion: "2" }))
    .createRun(createRunRequest(projects.list, template.name))
  const firstCreatedAt = new Date(Date.now() - (plan.largeList + 10) * 1000)
  const seedStart = performance.now()
  await seedWith(databases.serviceClient(), { template, from: 1, to: plan.smallList, firstCreatedAt })
  say(`seeded ${count(plan.smallList)} runs in ${seconds(performance.now() - seedStart)}`)
  await databases.analyze()

  await Scenarios.prepareDetailsRun(baseUrl)
  await Scenarios.prepareEventsRun(baseUrl, plan.load.concurrency + 1)
  const samples = await captureSamples(baseUrl, { work, workers: plan.load.concurrency, children: plan.watchActions.children })
  const echoPort = await freePort()
  // With the service's node options (the heap limit, V8's helper threads), so that the runtime's settings fall on both.
  const echo = startBuilt(await buildProgram("EchoServer.ts", work), [String(echoPort), samples], work, scriptNodeOptions("serve"))
  children.push(echo)
  await waitForOutput(echo, "listening")
  const context: Context = { file, baseUrl, echoUrl: `http://127.0.0.1:${echoPort}`, echo, samples, service }

  await throughputScenarios(context)
  await watchScenarios(context)
  await fanoutScenario(context)
  const seedMs = await listScenarios(context, template, firstCreatedAt)

  const report = {
    machine: { ...machineFacts(database), smoke, seedMsLargeList: Math.round(seedMs), totalSeconds: 0 },
    plan,
    rows,
    checks
  }
  report.machine.totalSeconds = Math.round((performance.now() - started) / 1000)
  say("")
  say(render(report))
  say("")
  // A run of some scenarios leaves the day's full run in place (and out of git: `partial/` is ignored).
  const resultsDir = smoke ? work : join(root, "bench", "results", ...(only === undefined ? [] : ["partial"]))
  mkdirSync(resultsDir, { recursive: true })
  const scenarios = only === undefined ? "" : `-${[...only].sort().join("+")}`
  const resultsFile = join(resultsDir, `${new Date().toISOString().slice(0, 10)}-${database}${scenarios}.json`)
  writeFileSync(resultsFile, `${JSON.stringify(report, null, 2)}\n`)
  say(`figures written to ${resultsFile}; ${report.machine.totalSeconds} s in all`)
}

const cleanUp = async () => {
  await Promise.allSettled(children.map((child) => child.stop()))
  await databases.dropAll()
  rmSync(work, { recursive: true, force: true })
}

main().then(
  async () => {
    await cleanUp()
    process.exit(broken ? 1 : 0)
  },
  async (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`)
    await cleanUp()
    process.exit(1)
  }
)
