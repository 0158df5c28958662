import { ConnectError, createClient } from "@connectrpc/connect"
import { createConnectTransport } from "@connectrpc/connect-node"
import { Effect, Layer, type Scope } from "effect"
import { InternalRunService } from "#gen/flyteidl2/workflow/internal_run_service_pb.js"
import * as MemoryChangeFeed from "../../src/adapters/memory/MemoryChangeFeed.js"
import * as PgNotifyChangeFeed from "../../src/adapters/pg-notify/PgNotifyChangeFeed.js"
import { RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import { baseUrl } from "../support/TestApp.js"

/** RunService over HTTP/1.1 (as the Python SDK) and HTTP/2, and InternalRunService, against the test server. */
export const clientsAt = (url: string) => ({
  runs: createClient(RunService, createConnectTransport({ baseUrl: url, httpVersion: "1.1" })),
  runs2: createClient(RunService, createConnectTransport({ baseUrl: url, httpVersion: "2" })),
  internal: createClient(InternalRunService, createConnectTransport({ baseUrl: url, httpVersion: "1.1" }))
})

export const clients = Effect.map(baseUrl, (url) => clientsAt(url))

export const call = <A>(f: () => Promise<A>) => Effect.promise(f)

export const project = { project: "flytesnacks", domain: "development" }
export const runId = (name: string, org = "") => ({ org, ...project, name })
export const actionId = (run: string, name: string) => ({ run: runId(run), name })

export type Next<A> =
  | { readonly _tag: "Message"; readonly value: A }
  | { readonly _tag: "End" }
  | { readonly _tag: "Error"; readonly error: ConnectError }

export interface Reader<A> {
  /** The next outcome, waiting at most 10 s. */
  readonly raw: Effect.Effect<Next<A>>
  /** The next message; dies when the stream ends or fails instead. */
  readonly next: Effect.Effect<A>
  /** Dies unless the stream ends OK next. */
  readonly end: Effect.Effect<void>
  /** The error the stream ends with next; dies on a message or a clean end. */
  readonly failure: Effect.Effect<ConnectError>
  readonly cancel: Effect.Effect<void>
}

const outcomeText = <A>(outcome: Next<A>) =>
  outcome._tag === "Error" ? `error ${outcome.error.message}` : outcome._tag === "End" ? "end" : "a message"

/** Starts a server stream; it is cancelled (the request aborted) when the scope closes. */
export const openStream = <A>(start: (signal: AbortSignal) => AsyncIterable<A>): Effect.Effect<Reader<A>, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => {
        const controller = new AbortController()
        return { controller, iterator: start(controller.signal)[Symbol.asyncIterator]() }
      }),
      ({ controller }) => Effect.sync(() => controller.abort())
    ),
    ({ controller, iterator }) => {
      const raw: Effect.Effect<Next<A>> = Effect.promise(() =>
        iterator.next().then(
          (result): Next<A> => (result.done === true ? { _tag: "End" } : { _tag: "Message", value: result.value }),
          (error: unknown): Next<A> => ({ _tag: "Error", error: ConnectError.from(error) })
        )
      ).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => "no message within 10 s" }), Effect.orDie)
      return {
        raw,
        next: Effect.flatMap(raw, (outcome) =>
          outcome._tag === "Message" ? Effect.succeed(outcome.value) : Effect.dieMessage(`expected a message, got ${outcomeText(outcome)}`)),
        end: Effect.flatMap(raw, (outcome) =>
          outcome._tag === "End" ? Effect.void : Effect.dieMessage(`expected the end, got ${outcomeText(outcome)}`)),
        failure: Effect.flatMap(raw, (outcome) =>
          outcome._tag === "Error" ? Effect.succeed(outcome.error) : Effect.dieMessage(`expected an error, got ${outcomeText(outcome)}`)),
        cancel: Effect.sync(() => controller.abort())
      }
    }
  )

/** Polls `check` until it holds (at most 10 s); for state the test cannot wait on as a message. */
export const eventually = <E, R>(check: Effect.Effect<boolean, E, R>): Effect.Effect<void, E, R> =>
  Effect.gen(function*() {
    for (let i = 0; i < 1000; i++) {
      if (yield* check) return
      yield* Effect.sleep("10 millis")
    }
    return yield* Effect.dieMessage("condition not met within 10 s")
  })

/** A replica's Postgres change feed on the database at `url`, with its in-process part. */
export const pgNotifyFeed = (url: string, options: { readonly pingIntervalMillis?: number } = {}) =>
  PgNotifyChangeFeed.layerUrl(url, options).pipe(Layer.provide(MemoryChangeFeed.layerLocal("not listening for changes yet")))
