import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect"
import { connectNodeAdapter } from "@connectrpc/connect-node"
import { Clock, Duration, Effect } from "effect"
import * as http2 from "node:http2"
import type { AddressInfo } from "node:net"
import {
  type AbortRequest,
  ActionsService,
  type EnqueueRequest
} from "#gen/flyteidl2/actions/actions_service_pb.js"
import type { ActionIdentifier } from "#gen/flyteidl2/common/identifier_pb.js"

interface CallBase {
  readonly key: string
  readonly answer: Code | "ok"
  /** The request's content type, e.g. `application/grpc+proto`. */
  readonly contentType: string | null
  /** The W3C trace context the call carried, if any. */
  readonly traceparent: string | null
}

export type ExecutorCall =
  | CallBase & { readonly kind: "enqueue"; readonly request: EnqueueRequest }
  | CallBase & { readonly kind: "abort"; readonly request: AbortRequest }

export interface ExecutorBehavior {
  /** How many calls, from now on, fail with `Unavailable`. */
  failNext: number
  /** How long each call takes, in milliseconds. */
  delayMs: number
  /** Answers to give instead of OK, for a kind, e.g. NotFound for every abort. */
  enqueueAnswer: Code | undefined
  abortAnswer: { readonly code: Code; readonly message: string } | undefined
}

/** A real `flyteidl2.actions.ActionsService` on HTTP/2 (gRPC and Connect), recording what it is sent. */
export interface TestExecutor {
  readonly url: string
  /** Every call received, in arrival order, with the answer it got. */
  readonly calls: Array<ExecutorCall>
  readonly behavior: ExecutorBehavior
  /** The largest number of calls for the same action and kind that were ever in progress together. */
  readonly maxOverlap: () => number
  /** Waits until `count` calls have been received (answered or not), and gives them. */
  readonly received: (count: number) => Effect.Effect<ReadonlyArray<ExecutorCall>>
}

const keyOf = (id: ActionIdentifier | undefined) =>
  `${id?.run?.project}/${id?.run?.domain}/${id?.run?.name}/${id?.name}`

/** Starts the executor on a port chosen by the OS; it stops with the scope. */
export const makeTestExecutor = Effect.gen(function*() {
  const calls: Array<ExecutorCall> = []
  const behavior: ExecutorBehavior = { failNext: 0, delayMs: 0, enqueueAnswer: undefined, abortAnswer: undefined }
  const inFlight = new Map<string, number>()
  const waiting = new Set<() => void>()
  const receive = (call: ExecutorCall) => {
    calls.push(call)
    for (const check of Array.from(waiting)) check()
  }
  const sessions = new Set<http2.ServerHttp2Session>()
  let maxOverlap = 0

  const handle = async (
    kind: "enqueue" | "abort",
    key: string,
    answer: () => Code | "ok",
    record: (given: Code | "ok") => unknown
  ) => {
    const slot = `${kind} ${key}`
    const count = (inFlight.get(slot) ?? 0) + 1
    inFlight.set(slot, count)
    maxOverlap = Math.max(maxOverlap, count)
    try {
      if (behavior.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, behavior.delayMs))
      const failing = behavior.failNext > 0
      if (failing) behavior.failNext--
      const given = failing ? Code.Unavailable : answer()
      record(given)
      if (given !== "ok") {
        const message = kind === "abort" && behavior.abortAnswer !== undefined && !failing
          ? behavior.abortAnswer.message
          : `executor says ${Code[given]}`
        throw new ConnectError(message, given)
      }
      return {}
    } finally {
      inFlight.set(slot, (inFlight.get(slot) ?? 1) - 1)
    }
  }

  const routes = (router: ConnectRouter) =>
    router.service(ActionsService, {
      enqueue: (request, context) => {
        const key = keyOf(request.action?.actionId)
        const contentType = context.requestHeader.get("content-type")
        return handle("enqueue", key, () => behavior.enqueueAnswer ?? "ok", (answer) =>
          receive({ kind: "enqueue", key, request, answer, contentType, traceparent: context.requestHeader.get("traceparent") }))
      },
      abort: (request, context) => {
        const key = keyOf(request.actionId)
        const contentType = context.requestHeader.get("content-type")
        return handle("abort", key, () => behavior.abortAnswer?.code ?? "ok", (answer) =>
          receive({ kind: "abort", key, request, answer, contentType, traceparent: context.requestHeader.get("traceparent") }))
      }
    })

  const server = yield* Effect.acquireRelease(
    Effect.async<http2.Http2Server>((resume) => {
      const created = http2.createServer(connectNodeAdapter({ routes }))
      created.on("session", (session) => {
        sessions.add(session)
        session.once("close", () => sessions.delete(session))
      })
      created.listen(0, "127.0.0.1", () => resume(Effect.succeed(created)))
    }),
    (created) =>
      Effect.async<void>((resume) => {
        created.close(() => resume(Effect.void))
        // Clients keep their HTTP/2 sessions open; the server would wait for them.
        for (const session of sessions) session.destroy()
      }).pipe(Effect.timeoutOption(Duration.seconds(2)))
  )
  const { port } = server.address() as AddressInfo
  const executor: TestExecutor = {
    url: `http://127.0.0.1:${port}`,
    calls,
    behavior,
    maxOverlap: () => maxOverlap,
    received: (count) =>
      Effect.async<ReadonlyArray<ExecutorCall>>((resume) => {
        const check = () => {
          if (calls.length < count) return
          waiting.delete(check)
          resume(Effect.succeed(calls.slice(0, count)))
        }
        waiting.add(check)
        check()
        return Effect.sync(() => waiting.delete(check))
      })
  }
  return executor
})

/** Polls `check` every 20 ms until it holds; the test fails after `timeout`. */
export const eventually = <E, R>(
  what: string,
  check: Effect.Effect<boolean, E, R>,
  timeout: Duration.DurationInput = "5 seconds"
): Effect.Effect<void, E, R> =>
  Effect.gen(function*() {
    const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(Duration.decode(timeout))
    while (!(yield* check)) {
      if ((yield* Clock.currentTimeMillis) > deadline) return yield* Effect.dieMessage(`timed out waiting: ${what}`)
      yield* Effect.sleep("20 millis")
    }
  })
