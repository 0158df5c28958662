import type { DescService } from "@bufbuild/protobuf"
import { type Client, createClient } from "@connectrpc/connect"
import { createConnectTransport, Http2SessionManager } from "@connectrpc/connect-node"
import { availableParallelism } from "node:os"
import { Worker } from "node:worker_threads"
import { InternalRunService } from "#gen/flyteidl2/workflow/internal_run_service_pb.js"
import { RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import { clock, closedLoop, type LoadFigures, paced, Samples } from "./Measure.js"
import { actionId, attemptEvents, childActionRequest, createRunRequest, listRunsRequest, projects, runId } from "./Requests.js"
import type { FromWorker, ToWorker, WatchKind, WatchWorkerData } from "./WatchWorker.js"

/** How hard and how long each scenario loads its target. */
export interface LoadSettings {
  readonly concurrency: number
  readonly warmupMs: number
  readonly measureMs: number
}

/** Clients over their own HTTP/2 connections; `close` ends the connections. */
export const connections = <S extends DescService>(service: S, baseUrl: string, count: number) => {
  const managers = Array.from({ length: count }, () => new Http2SessionManager(baseUrl))
  const clients: Array<Client<S>> = managers.map((sessionManager) =>
    createClient(service, createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true, sessionManager }))
  )
  return { clients, close: () => managers.forEach((manager) => manager.abort()) }
}

const client = <S extends DescService>(service: S, baseUrl: string) => connections(service, baseUrl, 1).clients[0]!

/** Fails on an in-band error status (InternalRunService answers its failures so). */
export const inBand = (response: { status?: { code: number; message: string } | undefined }) => {
  if (response.status !== undefined && response.status.code !== 0) {
    throw new Error(`in-band status ${response.status.code}: ${response.status.message}`)
  }
}

/** Closed-loop load with one connection per concurrent client. */
const load = async <S extends DescService>(
  service: S,
  baseUrl: string,
  settings: LoadSettings,
  call: (client: Client<S>, worker: number, sequence: number) => Promise<number | void>
): Promise<LoadFigures> => {
  const { clients, close } = connections(service, baseUrl, settings.concurrency)
  try {
    return await closedLoop({ ...settings, call: (worker, sequence) => call(clients[worker]!, worker, sequence) })
  } finally {
    close()
  }
}

const queued = 1

/**
 * CreateRun under load. With `checked`, an answer counts only when it shows the run asked for, queued (the echo's
 * answers are one captured run's, so they are not checked).
 */
export const createRuns = (baseUrl: string, settings: LoadSettings, tag: string, checked = true) =>
  load(RunService, baseUrl, settings, async (runs, worker, sequence) => {
    const name = `${tag}-${worker}-${sequence}`
    const { run } = await runs.createRun(createRunRequest(projects.create, name))
    if (!checked) return
    const id = run?.action?.id?.run
    if (id?.project !== projects.create || id.name !== name) throw new Error(`the answer names run ${id?.project}/${id?.name}, not ${name}`)
    const phase = run?.action?.status?.phase
    if (phase !== queued) throw new Error(`the new run ${name} is in phase ${phase}, not queued`)
  })

export const detailsRunName = "details"

export const getRunDetails = (baseUrl: string, settings: LoadSettings) =>
  load(RunService, baseUrl, settings, async (runs) => {
    await runs.getRunDetails({ runId: runId(projects.details, detailsRunName) })
  })

export const listRuns = (baseUrl: string, settings: LoadSettings) =>
  load(RunService, baseUrl, settings, async (runs) => {
    await runs.listRuns(listRunsRequest)
  })

export const eventsRunName = "events"
export const actionsPerBatch = 20
const eventsPerAttempt = 5

/**
 * Each call: 100 events, one new attempt (queued to succeeded) of each of the worker's 20 actions. Rounds
 * use attempt numbers of their own (round 1 starts at 100,001), so no round re-sends another's events.
 */
export const recordEvents = (baseUrl: string, settings: LoadSettings, round = 0) =>
  load(InternalRunService, baseUrl, settings, async (internal, worker, sequence) => {
    const attempt = round * 100_000 + sequence + 1
    const events = Array.from({ length: actionsPerBatch }, (_, k) =>
      attemptEvents(actionId(projects.events, eventsRunName, `e${worker}-${k}`), attempt, 5, attempt * 1000)).flat()
    inBand(await internal.recordActionEvents({ events }))
    return actionsPerBatch * eventsPerAttempt
  })

/** The run GetRunDetails reads: 10 attempts (nine failed, the last succeeded) of 5 events each. */
export const prepareDetailsRun = async (baseUrl: string) => {
  await client(RunService, baseUrl).createRun(createRunRequest(projects.details, detailsRunName))
  const id = actionId(projects.details, detailsRunName, "a0")
  const events = Array.from({ length: 10 }, (_, i) => attemptEvents(id, i + 1, i === 9 ? 5 : 6, i * 10_000)).flat()
  inBand(await client(InternalRunService, baseUrl).recordActionEvents({ events }))
}

export const recordChildren = async (baseUrl: string, project: string, run: string, names: ReadonlyArray<string>) => {
  const internal = client(InternalRunService, baseUrl)
  for (let i = 0; i < names.length; i += 50) {
    await Promise.all(names.slice(i, i + 50).map((name) => internal.recordAction(childActionRequest(project, run, name))))
  }
}

/** The run RecordActionEvents writes to, with each worker's 20 actions recorded. */
export const prepareEventsRun = async (baseUrl: string, workers: number) => {
  await client(RunService, baseUrl).createRun(createRunRequest(projects.events, eventsRunName))
  const names = Array.from({ length: workers * actionsPerBatch }, (_, i) => `e${Math.floor(i / actionsPerBatch)}-${i % actionsPerBatch}`)
  await recordChildren(baseUrl, projects.events, eventsRunName, names)
}

/** When each timed update was sent (`clock()`, ms since the epoch) and how long it took, in milliseconds. */
export interface WatchTimes {
  /** Each update's UpdateActionStatus call, sent to its answer. */
  readonly calls: ReadonlyArray<readonly [sentMs: number, ms: number]>
  /** Each update a stream showed, sent to shown. */
  readonly deliveries: ReadonlyArray<readonly [sentMs: number, ms: number]>
}

export interface WatchFigures {
  readonly streams: number
  readonly updates: number
  /** Deliveries expected (each update times the streams that watch it) and seen. */
  readonly expected: number
  readonly delivered: number
  readonly throughput: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly errors: number
  readonly firstError: string | undefined
}

interface WatchPlan {
  readonly streams: number
  readonly updatesPerSecond: number
  /** Updates at the same rate before the measured ones, not timed (see `watchLoad`). */
  readonly warmupSeconds: number
  readonly seconds: number
  /** The entities updates go to, in turn; each starts at attempt count 1. */
  readonly entities: ReadonlyArray<string>
  /** How many streams watch each entity. */
  readonly watchersPerEntity: number
  readonly watch: WatchKind
  readonly update: (internal: Client<typeof InternalRunService>, entity: string, attempts: number) => Promise<unknown>
}

/** The threads a watch scenario's streams are spread over: one per core, as the load for 1,000 streams needs. */
const cores = Math.max(1, availableParallelism())

/**
 * Opens the streams (in worker threads, `workerFile`), waits for each one's first message, then sends status
 * updates at a steady rate, each raising one entity's attempt count, and measures from the moment an update is
 * sent until a stream shows it (a later state counts for every update it includes). `whileLoaded` runs while the
 * updates flow.
 */
const watchLoad = async (baseUrl: string, plan: WatchPlan, whileLoaded: () => () => number, workerFile: string) => {
  const watchThreads = Math.min(cores, plan.streams)
  const delivered = new Int32Array(new SharedArrayBuffer(4 * watchThreads))
  // Each entity's attempt count starts at 1 and rises by one an update.
  const stride = Math.ceil((plan.warmupSeconds + plan.seconds) * plan.updatesPerSecond / plan.entities.length) + 2
  const sentAt = new BigInt64Array(new SharedArrayBuffer(8 * stride * plan.entities.length))
  const workers = Array.from({ length: watchThreads }, (_, slot) => {
    const streams = Array.from({ length: plan.streams }, (_, stream) => stream).filter((s) => s % watchThreads === slot)
    const data: WatchWorkerData = {
      baseUrl,
      watch: plan.watch,
      streams,
      perConnection: 100,
      delivered,
      slot,
      entities: plan.entities,
      sentAt,
      stride
    }
    return new Worker(workerFile, { workerData: data })
  })
  const messages = (worker: Worker, type: FromWorker["type"]) =>
    new Promise<FromWorker>((resolve, reject) => {
      const onMessage = (message: FromWorker) => {
        if (message.type === "failed" && type === "ready") reject(new Error(message.error))
        else if (message.type === type) resolve(message)
        else return
        worker.off("message", onMessage)
      }
      worker.on("message", onMessage)
      worker.once("error", reject)
    })
  const { clients: [internal], close: closeInternal } = connections(InternalRunService, baseUrl, 1)
  let errors = 0
  let firstError: string | undefined
  const fail = (error: unknown) => {
    errors += 1
    firstError ??= error instanceof Error ? error.message : String(error)
  }
  const timeout = (ms: number, what: string) =>
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} after ${ms} ms`)), ms).unref())
  const deliveredSoFar = () => delivered.reduce((sum, _, slot) => sum + Atomics.load(delivered, slot), 0)
  try {
    await Promise.race([
      Promise.all(workers.map((worker) => messages(worker, "ready"))),
      timeout(120_000, `not all of the ${plan.streams} streams had their first message`)
    ])
    const stopSampling = whileLoaded()
    const counts = new Map(plan.entities.map((entity) => [entity, 1]))
    let updates = 0
    const calls: Array<readonly [number, number]> = []
    let settled = 0
    const send = (timed: boolean) => (sequence: number) => {
      const index = sequence % plan.entities.length
      const entity = plan.entities[index]!
      const attempts = counts.get(entity)! + 1
      counts.set(entity, attempts)
      if (!timed) {
        // Its time stays 0 in `sentAt`: the streams do not count it.
        plan.update(internal!, entity, attempts).catch(fail)
        return
      }
      const sent = clock()
      Atomics.store(sentAt, index * stride + attempts, BigInt(Math.round(sent * 1000)))
      updates += 1
      plan.update(internal!, entity, attempts).then(() => calls.push([sent, clock() - sent]), fail).finally(() => settled++)
    }
    // A warm-up, as in the throughput scenarios: the first updates after the streams opened run code V8 has not
    // compiled yet, on database connections that have not run those statements, while the heap settles from the
    // opening; only the steady state with the streams open is measured.
    await paced(1000 / plan.updatesPerSecond, plan.warmupSeconds * 1000, send(false))
    const start = performance.now()
    await paced(1000 / plan.updatesPerSecond, plan.seconds * 1000, send(true))
    const expected = updates * plan.watchersPerEntity
    const deadline = performance.now() + 5000
    while ((deliveredSoFar() < expected || settled < updates) && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    const elapsed = (performance.now() - start) / 1000
    const peak = stopSampling()
    const results = workers.map((worker) => messages(worker, "done"))
    for (const worker of workers) worker.postMessage({ type: "stop" } satisfies ToWorker)
    const samples = new Samples()
    const deliveries: Array<readonly [number, number]> = []
    for (const result of await Promise.all(results)) {
      if (result.type !== "done") continue
      for (const value of result.samples) samples.add(value)
      result.samples.forEach((ms, i) => deliveries.push([result.sent[i]!, ms]))
      errors += result.errors
      firstError ??= result.firstError
    }
    return {
      figures: {
        streams: plan.streams,
        updates,
        expected,
        delivered: deliveredSoFar(),
        throughput: deliveredSoFar() / elapsed,
        p50Ms: samples.percentile(0.5),
        p99Ms: samples.percentile(0.99),
        errors,
        firstError
      } satisfies WatchFigures,
      peakRssMb: peak,
      times: { calls, deliveries } satisfies WatchTimes
    }
  } finally {
    await Promise.allSettled(workers.map((worker) => worker.terminate()))
    closeInternal()
  }
}

const running = 4

/** WatchRunDetails: `streams` streams spread over `runs` runs, `updatesPerSecond` root status updates. */
export const watchRunDetails = async (
  baseUrl: string,
  options: {
    readonly streams: number
    readonly runs: number
    readonly updatesPerSecond: number
    readonly warmupSeconds: number
    readonly seconds: number
  },
  whileLoaded: () => () => number,
  workerFile: string
) => {
  const names = Array.from({ length: options.runs }, (_, i) => `watched-${i}`)
  const runs = client(RunService, baseUrl)
  for (let i = 0; i < names.length; i += 50) {
    await Promise.all(names.slice(i, i + 50).map((name) => runs.createRun(createRunRequest(projects.watch, name))))
  }
  return watchLoad(baseUrl, {
    streams: options.streams,
    updatesPerSecond: options.updatesPerSecond,
    warmupSeconds: options.warmupSeconds,
    seconds: options.seconds,
    entities: names,
    watchersPerEntity: options.streams / options.runs,
    watch: { kind: "runDetails", project: projects.watch, names },
    update: (internal, run, attempts) =>
      internal.updateActionStatus({ actionId: actionId(projects.watch, run, "a0"), status: { phase: running, attempts } })
  }, whileLoaded, workerFile)
}

export const watchedTreeRunName = "watched-tree"

/** The first message of a stream (the stream is then cancelled). */
export const firstMessage = async <M>(open: (signal: AbortSignal) => AsyncIterable<M>): Promise<M> => {
  const abort = new AbortController()
  try {
    for await (const message of open(abort.signal)) return message
    throw new Error("the stream ended before its first message")
  } finally {
    abort.abort()
  }
}

/** The first message of a stream, then the one `change` causes (the stream is then cancelled). */
export const firstMessages = async <M>(
  open: (signal: AbortSignal) => AsyncIterable<M>,
  change: () => Promise<unknown>
): Promise<readonly [M, M]> => {
  const abort = new AbortController()
  try {
    const messages: Array<M> = []
    for await (const message of open(abort.signal)) {
      messages.push(message)
      if (messages.length === 1) await change()
      else return [messages[0]!, message]
    }
    throw new Error("the stream ended before the change's message")
  } finally {
    abort.abort()
  }
}

/** WatchActions: `streams` streams on one run of `children` child actions, `updatesPerSecond` child updates. */
export const watchActions = async (
  baseUrl: string,
  options: {
    readonly streams: number
    readonly children: number
    readonly updatesPerSecond: number
    readonly warmupSeconds: number
    readonly seconds: number
  },
  whileLoaded: () => () => number,
  workerFile: string
) => {
  const run = watchedTreeRunName
  await client(RunService, baseUrl).createRun(createRunRequest(projects.watch, run))
  const names = Array.from({ length: options.children }, (_, i) => `child${i}`)
  await recordChildren(baseUrl, projects.watch, run, names)
  return watchLoad(baseUrl, {
    streams: options.streams,
    updatesPerSecond: options.updatesPerSecond,
    warmupSeconds: options.warmupSeconds,
    seconds: options.seconds,
    entities: names,
    watchersPerEntity: options.streams,
    watch: { kind: "actions", project: projects.watch, run },
    update: (internal, name, attempts) =>
      internal.updateActionStatus({ actionId: actionId(projects.watch, run, name), status: { phase: running, attempts } })
  }, whileLoaded, workerFile)
}
