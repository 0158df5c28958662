// The watchers of the fanout scenario (bundled by `buildProgram` and run as worker threads of the bench), each a
// WatchActions stream on one HTTP/2 connection of its own, read off the wire as WatchWorker's streams are: 20
// streams each shown some 30,000 action states while the executor's 32 connections write would otherwise be read
// on the same thread that sends the writes and times their answers.
//
// "live" watchers open at once and follow the run while the executor writes; each keeps the latest phase of every
// child and when it first showed each child in SUCCEEDED. "late" watchers connect, then open their streams when
// told to ("go"), and note when they have shown every action of the tree.
import { setMaxListeners } from "node:events"
import type { ClientHttp2Session } from "node:http2"
import { parentPort, workerData } from "node:worker_threads"
import { ActionIdentifierSchema } from "#gen/flyteidl2/common/identifier_pb.js"
import { ActionSchema, ActionStatusSchema, EnrichedActionSchema } from "#gen/flyteidl2/workflow/run_definition_pb.js"
import { RunService, WatchActionsResponseSchema } from "#gen/flyteidl2/workflow/run_service_pb.js"
import { clock } from "./Measure.js"
import { runId } from "./Requests.js"
import { serverStream, session, WireFields } from "./WireStream.js"

export interface FanoutWorkerData {
  readonly baseUrl: string
  readonly project: string
  readonly run: string
  readonly mode: "live" | "late"
  /** The scenario's watcher numbers this thread opens. */
  readonly watchers: ReadonlyArray<number>
  /** The run's child actions, by index. */
  readonly children: ReadonlyArray<string>
  /**
   * Per watcher (by its scenario number, `Atomics`): children whose latest phase shown is SUCCEEDED (live), or
   * distinct actions shown (late). The main thread polls it to tell when the watchers are done.
   */
  readonly progress: Int32Array
  /** Per watcher: 1 once its stream ended, with an error or not, before it was stopped. */
  readonly ended: Int32Array
}

/** Main thread to worker: late watchers open their streams on "go"; every watcher closes on "stop". */
export type ToFanoutWorker = { readonly type: "go" } | { readonly type: "stop" }

export interface WatcherResult {
  readonly watcher: number
  /** When the stream first showed each child in SUCCEEDED (`clock()`; 0: never). */
  readonly succeededAt: Float64Array
  /** Children whose latest phase shown is SUCCEEDED. */
  readonly succeeded: number
  /** Distinct actions shown (the root included). */
  readonly actions: number
  /** When the stream's first message came (`clock()`; 0: never). */
  readonly firstAt: number
  /** When the stream had shown every action of the tree (`clock()`; 0: never); late watchers only. */
  readonly completeAt: number
  /** How the stream ended before it was stopped ("the stream ended" when without an error). */
  readonly error: string | undefined
}

/** Worker to main thread: "ready" once every live stream has its first message (or ended), every late one connected. */
export type FromFanoutWorker =
  | { readonly type: "ready" }
  | { readonly type: "done"; readonly watchers: ReadonlyArray<WatcherResult> }

const succeeded = 5

const describe = (error: unknown) => (error instanceof Error ? error.message : String(error))

/** Each action a WatchActions message shows: its name, and its phase when `phases` (late watchers need none). */
const shown = (bytes: Uint8Array, phases: boolean): Array<readonly [string, number]> =>
  new WireFields(bytes).messages(WatchActionsResponseSchema.field.enrichedActions.number).flatMap((enriched) => {
    const action = enriched.message(EnrichedActionSchema.field.action.number)
    const name = action?.message(ActionSchema.field.id.number)?.string(ActionIdentifierSchema.field.name.number)
    if (name === undefined) return []
    const phase = phases ? action?.message(ActionSchema.field.status.number)?.uint32(ActionStatusSchema.field.phase.number) : 0
    return [[name, phase ?? 0] as const]
  })

const connected = (opened: ClientHttp2Session) =>
  new Promise<void>((resolve) => {
    if (opened.connecting === false) return resolve()
    opened.once("connect", () => resolve())
    // A connection that fails fails its stream, which then counts as ended.
    opened.once("error", () => resolve())
  })

const run = (data: FanoutWorkerData, port: NonNullable<typeof parentPort>) => {
  const childIndex = new Map(data.children.map((name, index) => [name, index]))
  const treeSize = data.children.length + 1
  const request = { runId: runId(data.project, data.run) }
  const sessions = data.watchers.map(() => session(data.baseUrl))
  const stopAll = new AbortController()
  setMaxListeners(0, stopAll.signal)
  let stopped = false

  /** One stream: what it showed, and how it ended. */
  const follow = (watcher: number, on: ClientHttp2Session, firstShown: () => void) => {
    const phases = new Uint8Array(data.children.length)
    const succeededAt = new Float64Array(data.children.length)
    const names = new Set<string>()
    let done = 0
    let firstAt = 0
    let completeAt = 0
    let first = true
    // A late watcher's stream closes once the tree is complete; the scenario stops the live ones.
    const own = new AbortController()
    const abort = () => own.abort()
    stopAll.signal.addEventListener("abort", abort, { once: true })
    const onMessage = (bytes: Uint8Array) => {
      const now = clock()
      if (first) firstAt = now
      for (const [name, phase] of shown(bytes, data.mode === "live")) {
        names.add(name)
        const index = childIndex.get(name)
        if (index === undefined) continue
        const before = phases[index]!
        phases[index] = phase
        if (phase === succeeded && before !== succeeded) {
          done += 1
          if (succeededAt[index] === 0) succeededAt[index] = now
        } else if (phase !== succeeded && before === succeeded) done -= 1
      }
      Atomics.store(data.progress, watcher, data.mode === "live" ? done : names.size)
      if (first) {
        first = false
        firstShown()
      }
      if (data.mode === "late" && completeAt === 0 && names.size >= treeSize) {
        completeAt = now
        own.abort()
      }
    }
    const result = (error: string | undefined): WatcherResult => ({
      watcher,
      succeededAt,
      succeeded: done,
      actions: names.size,
      firstAt,
      completeAt,
      error
    })
    return serverStream(on, RunService.method.watchActions, request, own.signal, onMessage).then(
      () => (stopped ? undefined : "the stream ended"),
      (error: unknown) => (stopped || completeAt > 0 ? undefined : describe(error))
    ).then((error) => {
      stopAll.signal.removeEventListener("abort", abort)
      if (error !== undefined) Atomics.store(data.ended, watcher, 1)
      if (first) firstShown()
      return result(error)
    })
  }

  let ready = 0
  const onFirst = () => {
    if (++ready === data.watchers.length) port.postMessage({ type: "ready" } satisfies FromFanoutWorker)
  }
  let streams: Array<Promise<WatcherResult>> = []
  const open = () => {
    streams = data.watchers.map((watcher, index) => follow(watcher, sessions[index]!, data.mode === "live" ? onFirst : () => undefined))
  }
  if (data.mode === "live") open()
  else {
    void Promise.all(sessions.map(connected)).then(() => port.postMessage({ type: "ready" } satisfies FromFanoutWorker))
  }

  port.on("message", async (message: ToFanoutWorker) => {
    if (message.type === "go") return open()
    stopped = true
    stopAll.abort()
    const watchers = await Promise.all(streams)
    for (const opened of sessions) opened.close()
    port.postMessage(
      { type: "done", watchers } satisfies FromFanoutWorker,
      watchers.map((watcher) => watcher.succeededAt.buffer as ArrayBuffer)
    )
    port.close()
  })
}

if (parentPort !== null) void run(workerData as FanoutWorkerData, parentPort)
