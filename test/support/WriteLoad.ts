import { Code, ConnectError, createClient } from "@connectrpc/connect"
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node"
import { Effect } from "effect"
import { InternalRunService } from "#gen/flyteidl2/workflow/internal_run_service_pb.js"
import { RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import { createNamed, project } from "./RunRequests.js"

/** How the calls of one procedure were answered: by code name (`OK`, `Unavailable`, ...), with a message each. */
export interface Answers {
  readonly counts: Map<string, number>
  /** The first message seen for each code other than OK. */
  readonly messages: Map<string, string>
}

export interface WriteLoad {
  readonly createRun: Answers
  readonly recordAction: Answers
  /** Runs whose CreateRun was answered OK. */
  readonly runs: ReadonlyArray<string>
  /** Runs whose child action `c1` RecordAction answered with code 0. */
  readonly actions: ReadonlyArray<string>
  /** Calls answered so far with this code, over both procedures. */
  readonly answered: (code: string) => number
  /** Stops issuing calls and waits for those in flight. */
  readonly stop: Effect.Effect<void>
}

const answers = (): Answers => ({ counts: new Map(), messages: new Map() })

const tally = (into: Answers, code: string, message: string) => {
  into.counts.set(code, (into.counts.get(code) ?? 0) + 1)
  if (code !== "OK" && !into.messages.has(code)) into.messages.set(code, message)
}

/**
 * Write load through real Connect clients, as the SDK and an executor send it: `workers` loops, each creating
 * runs named `<prefix>-<worker>-<n>` (RunService over gRPC) and recording a child action `c1` under each run
 * created (InternalRunService over Connect, HTTP/1.1; its failures come in-band). Every call is answered within
 * `timeoutMs` or counted as `DeadlineExceeded`. Runs until `stop` (or the scope) ends it.
 */
export const startWriteLoad = (baseUrl: string, options: { readonly workers: number; readonly timeoutMs: number; readonly prefix: string }) =>
  Effect.acquireRelease(
    Effect.sync((): WriteLoad => {
      const runsClient = createClient(RunService, createGrpcTransport({ baseUrl }))
      const internal = createClient(InternalRunService, createConnectTransport({ baseUrl, httpVersion: "1.1" }))
      const created = answers()
      const recorded = answers()
      const runs: Array<string> = []
      const actions: Array<string> = []
      let stopped = false

      // Runs created whose child is not recorded yet; a RecordAction that fails is tried again later.
      const pending: Array<string> = []

      const recordChild = async (name: string) => {
        try {
          const response = await internal.recordAction({
            actionId: { run: { org: "", project: project.name, domain: project.domain, name }, name: "c1" },
            parent: "a0",
            inputUri: `file:///tmp/${name}/c1/inputs.pb`,
            spec: { case: "task", value: { id: { project: project.name, domain: project.domain, name: "wf.c1", version: "v1" } } }
          }, { timeoutMs: options.timeoutMs })
          const code = response.status?.code ?? 0
          tally(recorded, code === 0 ? "OK" : Code[code] ?? String(code), response.status?.message ?? "")
          if (code === 0) actions.push(name)
          else pending.push(name)
        } catch (error) {
          // A transport failure: the in-band contract was broken, or the process is gone.
          const failure = ConnectError.from(error)
          tally(recorded, `transport ${Code[failure.code]}`, failure.message)
          pending.push(name)
        }
      }

      // Each turn creates a run and records the child of the oldest run still without one. The children lag a
      // backlog of `workers` runs behind, and a turn whose CreateRun failed records one from that backlog, so
      // RecordAction is called while the database is away even when it had kept up with CreateRun before (a
      // failed RecordAction puts its run back). A CreateRun that failed is sent again, the same request with the
      // same name, as a client retrying `Unavailable` does: had it committed after all, the retry is answered
      // with the run. After a failure a worker waits a moment, so an outage does not turn into a busy loop.
      const worker = async (id: number) => {
        let n = 0
        while (!stopped) {
          const name = `${options.prefix}-${id}-${n}`
          let failed = false
          try {
            await runsClient.createRun(createNamed(name), { timeoutMs: options.timeoutMs })
            tally(created, "OK", "")
            runs.push(name)
            pending.push(name)
            n++
          } catch (error) {
            const failure = ConnectError.from(error)
            tally(created, Code[failure.code], failure.message)
            failed = true
            if (failure.code !== Code.Unavailable) n++
          }
          const child = failed || pending.length > options.workers ? pending.shift() : undefined
          if (child !== undefined) await recordChild(child)
          if (failed) await new Promise((resolve) => setTimeout(resolve, 50))
        }
      }

      const all = Promise.all(Array.from({ length: options.workers }, (_, id) => worker(id)))
      const stop = Effect.promise(() => {
        stopped = true
        return all
      }).pipe(Effect.asVoid)
      return {
        createRun: created,
        recordAction: recorded,
        runs,
        actions,
        answered: (code) => (created.counts.get(code) ?? 0) + (recorded.counts.get(code) ?? 0),
        stop
      }
    }),
    (load) => load.stop
  )
