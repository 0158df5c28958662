// One thread of the watch scenarios' streams (bundled by `buildProgram` and run as a worker thread of the bench).
// The streams of a scenario are split over threads, one per core, so that reading 10,000 messages a second does not
// queue them in the load generator itself: with every stream on the bench's main thread, that thread ran at 100 %
// of a core and the latencies it measured were its own backlog, for the echo as much as for the service. Each
// stream reads only the fields it needs off the wire (`WireStream`): decoding every message whole through
// Connect's client kept the threads at about one core between them.
import { setMaxListeners } from "node:events"
import { parentPort, workerData } from "node:worker_threads"
import { ActionIdentifierSchema, RunIdentifierSchema } from "#gen/flyteidl2/common/identifier_pb.js"
import {
  ActionDetailsSchema,
  ActionSchema,
  ActionStatusSchema,
  EnrichedActionSchema,
  RunDetailsSchema
} from "#gen/flyteidl2/workflow/run_definition_pb.js"
import {
  RunService,
  WatchActionsResponseSchema,
  WatchRunDetailsResponseSchema
} from "#gen/flyteidl2/workflow/run_service_pb.js"
import { clock } from "./Measure.js"
import { runId } from "./Requests.js"
import { serverStream, session, WireFields } from "./WireStream.js"

/** What a stream watches: the runs' details (stream `i` watches run `names[i % names.length]`) or one run's actions. */
export type WatchKind =
  | { readonly kind: "runDetails"; readonly project: string; readonly names: ReadonlyArray<string> }
  | { readonly kind: "actions"; readonly project: string; readonly run: string }

export interface WatchWorkerData {
  readonly baseUrl: string
  readonly watch: WatchKind
  /** The scenario's stream numbers this thread opens. */
  readonly streams: ReadonlyArray<number>
  readonly perConnection: number
  /** Updates shown, one counter per thread (`Atomics`), so that the main thread can tell when all came. */
  readonly delivered: Int32Array
  readonly slot: number
  /** The entities updates go to; an update is an entity's index and its new attempt count. */
  readonly entities: ReadonlyArray<string>
  /**
   * When each update was sent (`clock()` in microseconds; 0 before), at `entity * stride + attempts`. The main
   * thread writes it before it sends the update, so a stream cannot show an update whose time is not there yet,
   * as it could if the time came in a message to this thread.
   */
  readonly sentAt: BigInt64Array
  readonly stride: number
}

/** Main thread to worker. */
export type ToWorker = { readonly type: "stop" }

/** Worker to main thread. */
export type FromWorker =
  | { readonly type: "ready" }
  | { readonly type: "failed"; readonly error: string }
  | {
    readonly type: "done"
    /** How late each timed update was shown, in milliseconds. */
    readonly samples: Float64Array
    /** When each of those updates was sent (`clock()`), in the same order. */
    readonly sent: Float64Array
    readonly errors: number
    readonly firstError: string | undefined
  }

const describe = (error: unknown) => (error instanceof Error ? error.message : String(error))

/** The attempt counts a message shows, by entity (run or child action). */
type Seen = ReadonlyArray<readonly [string, number]>

// An action's name and attempt count, from the fields the generated schemas number.
const attemptsOf = (status: WireFields | undefined) => status?.uint32(ActionStatusSchema.field.attempts.number) ?? 0

const runDetailsSeen = (message: WireFields): Seen => {
  const action = message.message(WatchRunDetailsResponseSchema.field.details.number)
    ?.message(RunDetailsSchema.field.action.number)
  const name = action?.message(ActionDetailsSchema.field.id.number)
    ?.message(ActionIdentifierSchema.field.run.number)
    ?.string(RunIdentifierSchema.field.name.number)
  return name === undefined ? [] : [[name, attemptsOf(action?.message(ActionDetailsSchema.field.status.number))]]
}

const actionsSeen = (message: WireFields): Seen =>
  message.messages(WatchActionsResponseSchema.field.enrichedActions.number).flatMap((enriched) => {
    const action = enriched.message(EnrichedActionSchema.field.action.number)
    const name = action?.message(ActionSchema.field.id.number)?.string(ActionIdentifierSchema.field.name.number)
    return name === undefined ? [] : [[name, attemptsOf(action?.message(ActionSchema.field.status.number))] as const]
  })

const run = (data: WatchWorkerData, port: NonNullable<typeof parentPort>) => {
  const { watch } = data
  const sessions = Array.from({ length: Math.ceil(data.streams.length / data.perConnection) }, () => session(data.baseUrl))
  const abort = new AbortController()
  setMaxListeners(0, abort.signal)
  const entityIndex = new Map(data.entities.map((entity, index) => [entity, index]))
  const sentAt = (entity: number, attempts: number) =>
    attempts < data.stride ? Number(Atomics.load(data.sentAt, entity * data.stride + attempts)) / 1000 : 0
  const samples: Array<number> = []
  const sent: Array<number> = []
  let errors = 0
  let firstError: string | undefined
  let ready = 0
  let stopped = false

  /** Follows one stream, timing each update a message shows; `open` calls the method with the message handler. */
  const follow = async (open: (onMessage: (bytes: Uint8Array) => void) => Promise<void>, seen: (message: WireFields) => Seen) => {
    const last = new Map<string, number>()
    let first = true
    const onMessage = (bytes: Uint8Array) => {
      const now = clock()
      let shownUpdates = 0
      for (const [entity, attempts] of seen(new WireFields(bytes))) {
        const before = last.get(entity) ?? attempts
        const index = entityIndex.get(entity)
        if (index !== undefined && !first) {
          // A later state counts for every update it includes.
          for (let shown = before + 1; shown <= attempts; shown++) {
            const at = sentAt(index, shown)
            if (at > 0) {
              samples.push(now - at)
              sent.push(at)
              shownUpdates += 1
            }
          }
        }
        last.set(entity, Math.max(before, attempts))
      }
      if (shownUpdates > 0) Atomics.add(data.delivered, data.slot, shownUpdates)
      if (first) {
        first = false
        if (++ready === data.streams.length) port.postMessage({ type: "ready" } satisfies FromWorker)
      }
    }
    try {
      await open(onMessage)
      if (!stopped) throw new Error("the stream ended")
    } catch (error) {
      if (stopped) return
      errors += 1
      firstError ??= describe(error)
      // A stream that fails before its first message would leave the scenario waiting for it.
      if (first) port.postMessage({ type: "failed", error: describe(error) } satisfies FromWorker)
    }
  }

  const signal = abort.signal
  const streams = data.streams.map((stream, index) => {
    const on = sessions[Math.floor(index / data.perConnection)]!
    if (watch.kind === "actions") {
      const request = { runId: runId(watch.project, watch.run) }
      return follow((onMessage) => serverStream(on, RunService.method.watchActions, request, signal, onMessage), actionsSeen)
    }
    const request = { runId: runId(watch.project, watch.names[stream % watch.names.length]!) }
    return follow((onMessage) => serverStream(on, RunService.method.watchRunDetails, request, signal, onMessage), runDetailsSeen)
  })

  port.once("message", async (_stop: ToWorker) => {
    stopped = true
    abort.abort()
    await Promise.allSettled(streams)
    for (const opened of sessions) opened.close()
    const values = Float64Array.from(samples)
    const times = Float64Array.from(sent)
    port.postMessage({ type: "done", samples: values, sent: times, errors, firstError } satisfies FromWorker, [
      values.buffer,
      times.buffer
    ])
    port.close()
  })
}

if (parentPort !== null) void run(workerData as WatchWorkerData, parentPort)
