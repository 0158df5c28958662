import type {
  DescMessage,
  DescMethod,
  DescMethodBiDiStreaming,
  DescMethodServerStreaming,
  DescMethodUnary,
  DescService,
  MessageInitShape,
  MessageShape
} from "@bufbuild/protobuf"
import { Code, ConnectError, type HandlerContext, type MethodImpl, type ServiceImpl } from "@connectrpc/connect"
import { Cause, Context, Deferred, Effect, Exit, FiberId, FiberRef, FiberRefs, Runtime, Scope, Stream, type Tracer } from "effect"
import { responseWriter } from "./BinaryEncoding.js"
import { asClientFault } from "./ClientFaults.js"
import { logFailure, NotServed, shutdownError, toConnectError } from "./ConnectErrors.js"
import { validateRequest } from "./RequestValidation.js"
import { isBinary } from "./SharedMessages.js"
import { outcomeAttributes, rpcSystem } from "./RpcMetrics.js"
import { onStreamEnd } from "./StreamEnd.js"
import { streamIterable } from "./StreamIterable.js"
import { callerSpan } from "./TraceContext.js"

export type UnaryFn<I extends DescMessage, O extends DescMessage, E, R> = (
  request: MessageShape<I>,
  context: HandlerContext
) => Effect.Effect<MessageInitShape<O>, E, R>

export type ServerStreamFn<I extends DescMessage, O extends DescMessage, E, R> = (
  request: MessageShape<I>,
  context: HandlerContext
) => Stream.Stream<MessageInitShape<O>, E, R>

export type BiDiStreamFn<I extends DescMessage, O extends DescMessage, E, R> = (
  requests: Stream.Stream<MessageShape<I>, ConnectError>,
  context: HandlerContext
) => Stream.Stream<MessageInitShape<O>, E, R>

const procedureOf = (context: HandlerContext): string => `${context.service.typeName}/${context.method.name}`

/**
 * The bridge between Connect and Effect: one captured runtime runs every handler. Requests are validated
 * (RunService) before the handler runs, failures are mapped to a `ConnectError` inside the effect and
 * logged once, unary calls are interrupted by the request's abort signal, streams by the signal too and
 * end with `Unavailable` when the server shuts down (each open stream is in `stops` until it ends).
 */
export const makeEffectHandlers = <R>(options: {
  readonly runtime: Runtime.Runtime<R>
  readonly shuttingDown: Deferred.Deferred<void>
  /** Runs before every handler; a failure is answered as it maps (e.g. `Unavailable` before migrations). */
  readonly gate: Effect.Effect<void, unknown, R>
}) => {
  const { gate, runtime, shuttingDown } = options
  const runExit = Runtime.runPromiseExit(runtime)
  // Only when spans are recorded (an exporter is configured): otherwise the RPC's span would be work for nothing.
  const tracing = FiberRefs.getOrDefault(runtime.fiberRefs, FiberRef.currentTracerEnabled)

  const spanOptions = (context: HandlerContext): Tracer.SpanOptions => {
    const parent = callerSpan(context.requestHeader)
    return {
      kind: "server",
      captureStackTrace: false,
      ...(parent === undefined ? {} : { parent }),
      attributes: {
        "rpc.system": rpcSystem(context.requestHeader.get("content-type")),
        "rpc.service": context.service.typeName,
        "rpc.method": context.method.name
      }
    }
  }

  /** The RPC's server span (OpenTelemetry's RPC conventions), continuing the caller's `traceparent`. */
  const rpcSpan = <A, E>(context: HandlerContext, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
    if (!tracing) return effect
    const system = rpcSystem(context.requestHeader.get("content-type"))
    return effect.pipe(
      Effect.tapErrorCause((cause) =>
        Effect.annotateCurrentSpan(outcomeAttributes(system, toConnectError(cause, "").error.code, "."))
      ),
      Effect.tap(() => Effect.annotateCurrentSpan(outcomeAttributes(system, undefined, "."))),
      Effect.withSpan(procedureOf(context), spanOptions(context))
    )
  }

  const runSync = Runtime.runSync(runtime)
  const runFork = Runtime.runFork(runtime)

  /**
   * A stream's server span, as a unary RPC's, from the call until the stream ends as Connect sees it end (see
   * `onStreamEnd`): completed, failed with its code, or cancelled by the client, which ends it as interrupted (as a
   * unary call the client gives up on is). `messages` runs the stream's work below it. The span starts when Connect
   * starts reading (so it always ends), and ends with a scope of its own: Effect then ends it as it ends any other,
   * with the outcome as the exit.
   */
  const streamSpan = <O>(context: HandlerContext, messages: (span: Tracer.Span) => AsyncIterable<O>): AsyncIterable<O> => ({
    [Symbol.asyncIterator]: () => {
      const system = rpcSystem(context.requestHeader.get("content-type"))
      const [span, scope] = runSync(Effect.flatMap(Scope.make(), (scope) =>
        Effect.map(Scope.extend(Effect.makeSpanScoped(procedureOf(context), spanOptions(context)), scope), (span) =>
          [span, scope] as const)))
      const ended = (error: unknown) => {
        const code = error === undefined ? undefined : ConnectError.from(error).code
        for (const [key, value] of Object.entries(outcomeAttributes(system, code, "."))) span.attribute(key, value)
        const exit = error === undefined ? Exit.void
          : code === Code.Canceled ? Exit.interrupt(FiberId.none)
          : Exit.fail(error)
        runFork(Scope.close(scope, exit))
      }
      return onStreamEnd(messages(span), context.signal, ended)[Symbol.asyncIterator]()
    }
  })

  const requestIdOf = (context: HandlerContext): string =>
    context.requestHeader.get("x-request-id") ?? crypto.randomUUID()

  const mapped = <E>(context: HandlerContext, requestId: string) => (cause: Cause.Cause<E>) => {
    const failure = toConnectError(cause, requestId)
    return Effect.zipRight(logFailure(procedureOf(context), requestId, failure), Effect.fail(failure.error))
  }

  // Open streams, to end with Unavailable at shutdown (each one leaves the set when it ends).
  const stops = new Set<() => void>()
  runFork(Effect.flatMap(Deferred.await(shuttingDown), () =>
    Effect.sync(() => {
      for (const stop of Array.from(stops)) stop()
    })))

  /**
   * Runs `start`, then its stream, pulled as Connect asks; failures are mapped and logged once. `each` makes each
   * element the message it goes out as; `hub` says the elements come from one watch hub (see `streamIterable`).
   */
  const guardStream = <A, E, O>(
    start: Effect.Effect<Stream.Stream<A, E, R>, E, R>,
    context: HandlerContext,
    each: (element: A) => O,
    hub: boolean
  ): AsyncIterable<O> => {
    const requestId = requestIdOf(context)
    const messages = (span: Tracer.Span | undefined) =>
      streamIterable<A, E, R, O>({
        runtime,
        open: start,
        each,
        pullGate: hub,
        failed: mapped<E>(context, requestId),
        signal: context.signal,
        stops,
        stopped: () => mapped<ConnectError>(context, requestId)(Cause.fail(shutdownError())),
        ...(span === undefined ? {} : { span })
      })
    return tracing ? streamSpan(context, messages) : messages(undefined)
  }

  const unary = <I extends DescMessage, O extends DescMessage, E>(
    _method: DescMethodUnary<I, O>,
    fn: UnaryFn<I, O, E, R>,
    options: { readonly validate: boolean } = { validate: true }
  ) =>
  async (request: MessageShape<I>, context: HandlerContext): Promise<MessageInitShape<O>> => {
    const requestId = requestIdOf(context)
    const input = context.method.input as I
    const program = Effect.zipRight(
      Effect.zipRight(gate, options.validate ? validateRequest(input, request) : Effect.void),
      Effect.suspend(() => fn(request, context))
    ).pipe(Effect.catchAllCause(mapped(context, requestId)))
    const exit = await runExit(rpcSpan(context, program), { signal: context.signal })
    if (Exit.isSuccess(exit)) return responseWriter(context.method.output as O, isBinary(context))(exit.value)
    const failure = toConnectError(exit.cause, requestId)
    throw failure.error
  }

  /** The request validated (unless told not to), then the handler's stream, built when the stream opens with
   * no stream stage of its own (each stage is kept per open stream). */
  const opened = <I extends DescMessage, A, E>(
    request: MessageShape<I>,
    context: HandlerContext,
    validate: boolean,
    fn: (request: MessageShape<I>, context: HandlerContext) => Stream.Stream<A, E, R>
  ) =>
    Effect.zipRight(
      Effect.zipRight(gate, validate ? validateRequest(context.method.input as I, request) : Effect.void),
      Effect.sync(() => fn(request, context))
    )

  const serverStream = <I extends DescMessage, O extends DescMessage, E>(
    _method: DescMethodServerStreaming<I, O>,
    fn: ServerStreamFn<I, O, E, R>,
    options: { readonly validate: boolean } = { validate: true }
  ) =>
  (request: MessageShape<I>, context: HandlerContext): AsyncIterable<MessageInitShape<O>> =>
    guardStream(
      opened(request, context, options.validate, fn),
      context,
      responseWriter(context.method.output as O, isBinary(context)),
      false
    )

  /**
   * A stream whose every element comes from one watch hub, one for one (see `streamIterable`'s pull gate): it
   * waits outside Effect between elements, and `messages(context)`, called once per stream, makes each element
   * the message it goes out as when Connect takes it, with no stream stage per open stream.
   */
  const hubStream = <I extends DescMessage, O extends DescMessage, A, E>(
    _method: DescMethodServerStreaming<I, O>,
    fn: (request: MessageShape<I>, context: HandlerContext) => Stream.Stream<A, E, R>,
    messages: (context: HandlerContext) => (element: A) => MessageInitShape<O>
  ) =>
  (request: MessageShape<I>, context: HandlerContext): AsyncIterable<MessageInitShape<O>> =>
    guardStream(opened(request, context, true, fn), context, messages(context), true)

  const bidiStream = <I extends DescMessage, O extends DescMessage, E>(
    _method: DescMethodBiDiStreaming<I, O>,
    fn: BiDiStreamFn<I, O, E, R>
  ) =>
  (requests: AsyncIterable<MessageShape<I>>, context: HandlerContext): AsyncIterable<MessageInitShape<O>> =>
    guardStream(
      Effect.as(
        gate,
        Stream.suspend(() => fn(Stream.fromAsyncIterable(requests, (error) => asClientFault(ConnectError.from(error))), context))
      ),
      context,
      responseWriter(context.method.output as O, isBinary(context)),
      false
    )

  /** A method whose issue has not landed: validated, then answered `Unimplemented`. */
  const notServed = (method: DescMethod): MethodImpl<DescMethod> => {
    const failure = () => new NotServed(`${method.parent.typeName}/${method.name} is not served yet`)
    switch (method.methodKind) {
      case "unary":
        return unary(method as DescMethodUnary<DescMessage, DescMessage>, () => Effect.fail(failure())) as MethodImpl<DescMethod>
      case "server_streaming":
        return serverStream(method as DescMethodServerStreaming<DescMessage, DescMessage>, () => Stream.fail(failure())) as MethodImpl<DescMethod>
      case "bidi_streaming":
        return bidiStream(method as DescMethodBiDiStreaming<DescMessage, DescMessage>, () => Stream.fail(failure())) as MethodImpl<DescMethod>
      case "client_streaming":
        return (async () => {
          throw new ConnectError(failure().message, Code.Unimplemented)
        }) as MethodImpl<DescMethod>
    }
  }

  /** A full implementation of `service`: the given methods, every other one `notServed`. */
  const service = <S extends DescService>(
    desc: S,
    implemented: Partial<ServiceImpl<S>>
  ): ServiceImpl<S> => {
    const impl: Record<string, unknown> = {}
    for (const method of desc.methods) {
      impl[method.localName] = (implemented as Record<string, unknown>)[method.localName] ?? notServed(method)
    }
    return impl as ServiceImpl<S>
  }

  /** A service of the runtime, for handlers that build streams (no per-message stage to reach it). */
  const get = <I extends R, S>(tag: Context.Tag<I, S>): S => Context.get(runtime.context as Context.Context<I>, tag)

  return { unary, serverStream, hubStream, bidiStream, service, get }
}

export type EffectHandlers<R> = ReturnType<typeof makeEffectHandlers<R>>
