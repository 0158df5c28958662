/**
 * The ceiling: a bare connect-node server (h2c, no validation, no database) that answers each
 * method the bench loads with a constant response, one captured from the real service. Its watches send
 * the captured first message, then, for each UpdateActionStatus (and, on WatchActions, each RecordAction),
 * the captured message with that status to every stream of the run, built and encoded once (as the service
 * does). Usage:
 * `node --import tsx bench/EchoServer.ts <port> <samples dir>`.
 */
import { clone, create, fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf"
import { EmptySchema } from "@bufbuild/protobuf/wkt"
import { type ConnectRouter } from "@connectrpc/connect"
import { connectNodeAdapter } from "@connectrpc/connect-node"
import { readFileSync } from "node:fs"
import { createServer } from "node:http2"
import { join } from "node:path"
import {
  InternalRunService,
  RecordActionEventsResponseSchema
} from "#gen/flyteidl2/workflow/internal_run_service_pb.js"
import { defaultCompressMinBytes } from "../src/app/config/settings.js"
import {
  CreateRunResponseSchema,
  GetRunDetailsResponseSchema,
  ListRunsResponseSchema,
  RunService,
  type WatchActionsResponse,
  WatchActionsResponseSchema,
  type WatchRunDetailsResponse,
  WatchRunDetailsResponseSchema
} from "#gen/flyteidl2/workflow/run_service_pb.js"

const [portText, samples] = process.argv.slice(2)
if (portText === undefined || samples === undefined) throw new Error("usage: EchoServer.ts <port> <samples dir>")

const sample = (method: string) => readFileSync(join(samples, `${method}.bin`))
const createRun = fromBinary(CreateRunResponseSchema, sample("createRun"))
const getRunDetails = fromBinary(GetRunDetailsResponseSchema, sample("getRunDetails"))
const listRuns = fromBinary(ListRunsResponseSchema, sample("listRuns"))
const recordActionEvents = fromBinary(RecordActionEventsResponseSchema, sample("recordActionEvents"))

const watchRunDetails = fromBinary(WatchRunDetailsResponseSchema, sample("watchRunDetails"))
const watchActions = fromBinary(WatchActionsResponseSchema, sample("watchActions"))

/** The message as bytes carried in unknown fields: each stream copies them instead of encoding it. */
const encodedOnce = <Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): MessageShape<Desc> => {
  const encoded = create(schema)
  const fields = fromBinary(EmptySchema, toBinary(schema, message)).$unknown
  if (fields !== undefined) encoded.$unknown = fields
  return encoded
}

/** One stream's messages not yet taken, and the reader waiting for the next. */
class Outlet<M> {
  private readonly queue: Array<M> = []
  private waiting: ((message: M) => void) | undefined
  push(message: M) {
    const waiting = this.waiting
    if (waiting === undefined) this.queue.push(message)
    else {
      this.waiting = undefined
      waiting(message)
    }
  }
  next(): Promise<M> {
    const queued = this.queue.shift()
    return queued !== undefined ? Promise.resolve(queued) : new Promise((resolve) => (this.waiting = resolve))
  }
}

/** The open streams of each run. */
const outlets = <M>() => {
  const byRun = new Map<string, Set<Outlet<M>>>()
  return {
    async *stream(run: string, first: M, signal: AbortSignal): AsyncIterable<M> {
      const outlet = new Outlet<M>()
      const open = byRun.get(run) ?? new Set()
      byRun.set(run, open.add(outlet))
      try {
        yield first
        const aborted = new Promise<undefined>((resolve) => signal.addEventListener("abort", () => resolve(undefined)))
        for (;;) {
          const message = await Promise.race([outlet.next(), aborted])
          if (message === undefined) return
          yield message
        }
      } finally {
        open.delete(outlet)
      }
    },
    send(run: string, message: M) {
      for (const outlet of byRun.get(run) ?? []) outlet.push(message)
    }
  }
}

const detailsStreams = outlets<WatchRunDetailsResponse>()
const actionsStreams = outlets<WatchActionsResponse>()

const detailsOf = (run: string, attempts: number) => {
  const message = clone(WatchRunDetailsResponseSchema, watchRunDetails)
  const action = message.details?.action
  if (action?.id?.run !== undefined) action.id.run.name = run
  if (action?.status !== undefined) action.status.attempts = attempts
  return message
}

// An update as the service sends it (the changed action with its ancestors), for the action and attempts given.
const watchActionsUpdate = fromBinary(WatchActionsResponseSchema, sample("watchActionsUpdate"))
const changed = watchActionsUpdate.enrichedActions.at(-1)?.action?.id?.name

const actionOf = (name: string, phase: number, attempts: number) => {
  const message = clone(WatchActionsResponseSchema, watchActionsUpdate)
  const action = message.enrichedActions.find((entry) => entry.action?.id?.name === changed)?.action
  if (action?.id !== undefined) action.id.name = name
  if (action?.status !== undefined) {
    action.status.phase = phase
    action.status.attempts = attempts
  }
  return message
}

const queued = 1
const ok = { code: 0, message: "" }

const routes = (router: ConnectRouter) => {
  router.service(RunService, {
    createRun: () => createRun,
    getRunDetails: () => getRunDetails,
    listRuns: () => listRuns,
    watchRunDetails: (request, context) => {
      const run = request.runId?.name ?? ""
      return detailsStreams.stream(run, encodedOnce(WatchRunDetailsResponseSchema, detailsOf(run, 1)), context.signal)
    },
    watchActions: (request, context) =>
      actionsStreams.stream(request.runId?.name ?? "", encodedOnce(WatchActionsResponseSchema, watchActions), context.signal)
  })
  router.service(InternalRunService, {
    recordActionEvents: () => recordActionEvents,
    // The service's answer: the action's id and an OK status; a new child is shown to its run's streams.
    recordAction: (request) => {
      const name = request.actionId?.name ?? ""
      actionsStreams.send(request.actionId?.run?.name ?? "", encodedOnce(WatchActionsResponseSchema, actionOf(name, queued, 0)))
      return { ...(request.actionId === undefined ? {} : { actionId: request.actionId }), status: ok }
    },
    updateActionStatus: (request) => {
      const run = request.actionId?.run?.name ?? ""
      const name = request.actionId?.name ?? ""
      const attempts = request.status?.attempts ?? 0
      if (name === "a0") detailsStreams.send(run, encodedOnce(WatchRunDetailsResponseSchema, detailsOf(run, attempts)))
      else {
        const phase = request.status?.phase ?? 0
        actionsStreams.send(run, encodedOnce(WatchActionsResponseSchema, actionOf(name, phase, attempts)))
      }
      return { ...(request.actionId === undefined ? {} : { actionId: request.actionId }), status: ok }
    }
  })
}

// The same response compression as the service's default, so both do the same transport work.
createServer({}, connectNodeAdapter({ routes, compressMinBytes: defaultCompressMinBytes })).listen(Number(portText), "127.0.0.1", () => {
  process.stdout.write("listening\n")
})
process.on("SIGTERM", () => process.exit(0))
