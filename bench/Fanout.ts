import { createClient } from "@connectrpc/connect"
import { createConnectTransport } from "@connectrpc/connect-node"
import { availableParallelism } from "node:os"
import { Worker } from "node:worker_threads"
import { InternalRunService } from "#gen/flyteidl2/workflow/internal_run_service_pb.js"
import { RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import type { FanoutWorkerData, FromFanoutWorker, ToFanoutWorker, WatcherResult } from "./FanoutWorker.js"
import { clock, type LoadFigures, Samples } from "./Measure.js"
import { actionId, childActionRequest, createRunRequest, projects } from "./Requests.js"
import { connections, inBand } from "./Scenarios.js"

/** The shape of the fanout scenario. */
export interface FanoutPlan {
  readonly children: number
  /** The executor's HTTP/2 connections, one call in flight on each. */
  readonly connections: number
  readonly liveWatchers: number
  readonly lateWatchers: number
  /** How long the live watchers may take to catch up once the last write is answered. */
  readonly catchUpSeconds: number
}

export interface LiveFigures {
  readonly watchers: number
  /** Watchers that showed every child in SUCCEEDED and whose stream did not end. */
  readonly complete: number
  /** How each watcher whose stream ended ended, "watcher 3: resource_exhausted: ...". */
  readonly ended: ReadonlyArray<string>
  /** (watcher, child) pairs shown in SUCCEEDED, of those whose SUCCEEDED write was answered. */
  readonly delivered: number
  readonly expected: number
  /** From the SUCCEEDED write's answer to a watcher showing it (0 when shown before the answer came). */
  readonly p50Ms: number
  readonly p99Ms: number
}

export interface LateFigures {
  readonly watchers: number
  /** Watchers that showed every action of the tree. */
  readonly complete: number
  /** From the streams' opening until the last of them had the whole tree; NaN when one never had it. */
  readonly maxMs: number
  readonly minMs: number
  /** From the opening until the last of them had its first message (NaN when one never had it). */
  readonly firstMessageMs: number
  readonly ended: ReadonlyArray<string>
}

const running = 4
const succeeded = 5
const cores = Math.max(1, availableParallelism())

const describe = (error: unknown) => (error instanceof Error ? error.message : String(error))

/** Unary calls timed one by one; a call fails on a transport error or an in-band error status. */
class Calls {
  private readonly samples = new Samples()
  private errors = 0
  private firstError: string | undefined

  async time(call: () => Promise<{ status?: { code: number; message: string } | undefined }>): Promise<boolean> {
    const began = performance.now()
    try {
      inBand(await call())
      this.samples.add(performance.now() - began)
      return true
    } catch (error) {
      this.errors += 1
      this.firstError ??= describe(error)
      return false
    }
  }

  figures(elapsedMs: number): LoadFigures {
    return {
      calls: this.samples.count,
      throughput: this.samples.count / (elapsedMs / 1000),
      p50Ms: this.samples.percentile(0.5),
      p99Ms: this.samples.percentile(0.99),
      errors: this.errors,
      firstError: this.firstError
    }
  }
}

/** Each client takes the next child until none is left, one call (or one child's calls) at a time; the ms it took. */
const drive = async <C>(clients: ReadonlyArray<C>, count: number, work: (client: C, index: number) => Promise<unknown>) => {
  const start = performance.now()
  let next = 0
  await Promise.all(clients.map(async (client) => {
    for (let index = next++; index < count; index = next++) await work(client, index)
  }))
  return performance.now() - start
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const timeout = (ms: number, what: string) =>
  new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} after ${ms} ms`)), ms).unref())

/** Watchers spread over worker threads (one per core), `mode` as in FanoutWorker. */
const startWatchers = (
  workerFile: string,
  settings: Omit<FanoutWorkerData, "watchers" | "progress" | "ended">,
  watchers: number
) => {
  const progress = new Int32Array(new SharedArrayBuffer(4 * watchers))
  const ended = new Int32Array(new SharedArrayBuffer(4 * watchers))
  const threads = Math.min(cores, watchers)
  const workers = Array.from({ length: threads }, (_, slot) => {
    const data: FanoutWorkerData = {
      ...settings,
      watchers: Array.from({ length: watchers }, (_, watcher) => watcher).filter((watcher) => watcher % threads === slot),
      progress,
      ended
    }
    return new Worker(workerFile, { workerData: data })
  })
  const next = (worker: Worker, type: FromFanoutWorker["type"]) =>
    new Promise<FromFanoutWorker>((resolve, reject) => {
      const onMessage = (message: FromFanoutWorker) => {
        if (message.type !== type) return
        worker.off("message", onMessage)
        resolve(message)
      }
      worker.on("message", onMessage)
      worker.once("error", reject)
    })
  const post = (message: ToFanoutWorker) => workers.forEach((worker) => worker.postMessage(message))
  return {
    ready: (timeoutMs: number) =>
      Promise.race([
        Promise.all(workers.map((worker) => next(worker, "ready"))),
        timeout(timeoutMs, `the ${watchers} watchers were not ready`)
      ]),
    go: () => post({ type: "go" }),
    /** Waits until each watcher has reached `target` or ended, at most until `deadline` (`performance.now()`). */
    settled: async (target: number, deadline: number) => {
      const pending = () =>
        progress.some((_, watcher) => Atomics.load(progress, watcher) < target && Atomics.load(ended, watcher) === 0)
      while (pending() && performance.now() < deadline) await delay(20)
    },
    stop: async (): Promise<ReadonlyArray<WatcherResult>> => {
      const done = workers.map((worker) => next(worker, "done"))
      post({ type: "stop" })
      const results = await Promise.all(done)
      return results.flatMap((result) => result.type === "done" ? result.watchers : [])
    },
    terminate: () => Promise.allSettled(workers.map((worker) => worker.terminate()))
  }
}

const endings = (watchers: ReadonlyArray<WatcherResult>) =>
  watchers.flatMap((watcher) => (watcher.error === undefined ? [] : [`watcher ${watcher.watcher}: ${watcher.error}`]))

/** The names of the run's children. */
const childNames = (plan: FanoutPlan) => Array.from({ length: plan.children }, (_, i) => `c${i}`)

/**
 * One server's side of the fanout: a run whose `plan.children` child actions an executor writes over
 * `plan.connections` connections (RecordAction each in `record`, then RUNNING and SUCCEEDED each with
 * UpdateActionStatus in `update`) while `plan.liveWatchers` WatchActions streams, open and shown the run before
 * the first write, follow it (`watched`). The caller runs the phases, so that it can alternate two servers'.
 * `whileLoaded` samples the server's memory from the streams' opening until `watched` stops them.
 */
export const open = async (
  baseUrl: string,
  plan: FanoutPlan,
  workerFile: string,
  run: string,
  whileLoaded: () => () => number
) => {
  const project = projects.fanout
  const children = childNames(plan)
  await createClient(RunService, createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true }))
    .createRun(createRunRequest(project, run))
  const live = startWatchers(workerFile, { baseUrl, project, run, children, mode: "live" }, plan.liveWatchers)
  const executor = connections(InternalRunService, baseUrl, plan.connections)
  const close = async () => {
    executor.close()
    await live.terminate()
  }
  try {
    await live.ready(60_000)
  } catch (error) {
    await close()
    throw error
  }
  const stopSampling = whileLoaded()
  // When each child's SUCCEEDED write was answered (`clock()`; 0: it failed).
  const answeredAt = new Float64Array(plan.children)
  let lastAnswer = performance.now()

  return {
    record: async (): Promise<LoadFigures> => {
      const records = new Calls()
      const ms = await drive(executor.clients, plan.children, (internal, index) =>
        records.time(() => internal.recordAction(childActionRequest(project, run, children[index]!))))
      return records.figures(ms)
    },
    update: async (): Promise<LoadFigures> => {
      const updates = new Calls()
      const ms = await drive(executor.clients, plan.children, async (internal, index) => {
        const id = actionId(project, run, children[index]!)
        await updates.time(() => internal.updateActionStatus({ actionId: id, status: { phase: running, attempts: 1 } }))
        if (await updates.time(() => internal.updateActionStatus({ actionId: id, status: { phase: succeeded, attempts: 1 } }))) {
          answeredAt[index] = clock()
        }
      })
      lastAnswer = performance.now()
      return updates.figures(ms)
    },
    /** Waits (at most `plan.catchUpSeconds` after the last answer) for the streams to show every child SUCCEEDED. */
    watched: async (): Promise<{ readonly live: LiveFigures; readonly peakRssMb: number }> => {
      await live.settled(plan.children, lastAnswer + plan.catchUpSeconds * 1000)
      const watchers = await live.stop()
      const peakRssMb = stopSampling()
      const samples = new Samples()
      let expected = 0
      for (const watcher of watchers) {
        for (let index = 0; index < plan.children; index++) {
          const answered = answeredAt[index]!
          if (answered === 0) continue
          expected += 1
          const shown = watcher.succeededAt[index]!
          if (shown > 0) samples.add(Math.max(0, shown - answered))
        }
      }
      const complete = watchers.filter((watcher) => watcher.error === undefined && watcher.succeeded === plan.children)
      return {
        live: {
          watchers: plan.liveWatchers,
          complete: complete.length,
          ended: endings(watchers),
          delivered: samples.count,
          expected,
          p50Ms: samples.percentile(0.5),
          p99Ms: samples.percentile(0.99)
        },
        peakRssMb
      }
    },
    close
  }
}

/**
 * `plan.lateWatchers` streams opened together on `run` once its writes are done: how long until each had shown
 * every action of the tree (the root and its children).
 */
export const late = async (baseUrl: string, plan: FanoutPlan, workerFile: string, run: string): Promise<LateFigures> => {
  const count = plan.lateWatchers
  const children = childNames(plan)
  const late = startWatchers(workerFile, { baseUrl, project: projects.fanout, run, children, mode: "late" }, count)
  try {
    // Connected first, so that the time is the service's, not the connections' set-up.
    await late.ready(60_000)
    const opened = clock()
    late.go()
    await late.settled(children.length + 1, performance.now() + 60_000)
    const watchers = await late.stop()
    const times = watchers.map((watcher) => (watcher.completeAt > 0 ? watcher.completeAt - opened : Number.NaN))
    const complete = times.filter((ms) => !Number.isNaN(ms))
    const firsts = watchers.map((watcher) => (watcher.firstAt > 0 ? watcher.firstAt - opened : Number.NaN))
    return {
      watchers: count,
      complete: complete.length,
      maxMs: complete.length === count ? Math.max(...complete) : Number.NaN,
      minMs: complete.length === 0 ? Number.NaN : Math.min(...complete),
      firstMessageMs: Math.max(...firsts),
      ended: endings(watchers)
    }
  } finally {
    await late.terminate()
  }
}
