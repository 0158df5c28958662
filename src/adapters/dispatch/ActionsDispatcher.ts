import { create, fromBinary } from "@bufbuild/protobuf"
import { Code, ConnectError, createClient } from "@connectrpc/connect"
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node"
import { Duration, Effect, Layer, Option } from "effect"
import { AbortRequestSchema, ActionsService, EnqueueRequestSchema } from "#gen/flyteidl2/actions/actions_service_pb.js"
import { RunSpecSchema } from "#gen/flyteidl2/task/run_pb.js"
import { TaskSpecSchema } from "#gen/flyteidl2/task/task_definition_pb.js"
import type { ActionKey } from "../../domain/Ids.js"
import { DispatchFailed, Dispatcher, type EnqueueRequest } from "../../ports/Dispatcher.js"

export interface ActionsDispatcherOptions {
  /** `runs.actionsServiceUrl`. */
  readonly url: string
  /** The deadline of one call. */
  readonly timeout: Duration.DurationInput
}

/** The URL without user or password, for logs. */
export const describeUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    parsed.username = ""
    parsed.password = ""
    return parsed.toString().replace(/\/$/, "")
  } catch {
    return "(an invalid URL)"
  }
}

const actionId = (action: ActionKey, org: string) => ({ run: { org, ...action.run }, name: action.name })

const enqueueMessage = (request: EnqueueRequest) =>
  create(EnqueueRequestSchema, {
    action: {
      actionId: actionId(request.action, request.org),
      inputUri: request.inputUri,
      runOutputBase: request.runOutputBase,
      spec: {
        case: "task",
        value: {
          ...(request.task === undefined ? {} : { id: request.task }),
          spec: fromBinary(TaskSpecSchema, request.taskSpec.binary),
          // Upstream always sends the wrapper, empty when the task is not cached.
          cacheKey: ""
        }
      }
    },
    runSpec: fromBinary(RunSpecSchema, request.runSpec.binary)
  })

const failure = (error: unknown) => {
  const connect = ConnectError.from(error)
  return new DispatchFailed({ message: `${Code[connect.code]}: ${connect.rawMessage}` })
}

/** The actions service wraps Kubernetes' not-found as Internal, so the message is read too (as upstream does). */
const alreadyGone = (error: ConnectError) => error.code === Code.NotFound || /not found/i.test(error.rawMessage)

/**
 * The current span as a W3C `traceparent`, so the executor's handling continues the delivery's trace; nothing
 * when spans are not recorded (tracing off).
 */
const traceHeaders = Effect.map(Effect.option(Effect.currentSpan), (span): Record<string, string> =>
  Option.isSome(span) && span.value.sampled
    ? { traceparent: `00-${span.value.traceId}-${span.value.spanId}-01` }
    : {})

/**
 * `runs.dispatcher: actions`: a gRPC (HTTP/2) client of `flyteidl2.actions.ActionsService`. An Enqueue the
 * executor already has (`AlreadyExists`) and an Abort of an action it does not know count as delivered.
 */
export const make = (options: ActionsDispatcherOptions) =>
  Effect.gen(function*() {
    const sessions = yield* Effect.acquireRelease(
      Effect.sync(() => new Http2SessionManager(options.url)),
      (manager) => Effect.sync(() => manager.abort())
    )
    const client = createClient(
      ActionsService,
      createGrpcTransport({ baseUrl: options.url, sessionManager: sessions })
    )
    const timeoutMs = Duration.toMillis(Duration.decode(options.timeout))

    const call = (
      send: (signal: AbortSignal, headers: Record<string, string>) => Promise<unknown>,
      done: (error: ConnectError) => boolean
    ) =>
      Effect.flatMap(traceHeaders, (headers) =>
        Effect.tryPromise({ try: (signal) => send(signal, headers), catch: (error) => ConnectError.from(error) })
      ).pipe(
        Effect.catchIf((error) => done(error), () => Effect.void),
        Effect.mapError((error) => failure(error)),
        Effect.asVoid
      )

    return Dispatcher.of({
      enqueue: (request) =>
        Effect.try({ try: () => enqueueMessage(request), catch: (error) => failure(error) }).pipe(
          Effect.flatMap((message) =>
            call(
              (signal, headers) => client.enqueue(message, { signal, timeoutMs, headers }),
              (error) => error.code === Code.AlreadyExists
            )
          ),
          Effect.withSpan("ActionsDispatcher.enqueue")
        ),
      abort: (request) =>
        call(
          (signal, headers) =>
            client.abort(
              create(AbortRequestSchema, { actionId: actionId(request.action, request.org), reason: request.reason }),
              { signal, timeoutMs, headers }
            ),
          alreadyGone
        ).pipe(Effect.withSpan("ActionsDispatcher.abort"))
    })
  })

export const layer = (options: ActionsDispatcherOptions): Layer.Layer<Dispatcher> =>
  Layer.scoped(
    Dispatcher,
    Effect.zipLeft(make(options), Effect.logInfo(`dispatcher: actions at ${describeUrl(options.url)}`))
  )
