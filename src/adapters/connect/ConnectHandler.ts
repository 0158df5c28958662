import { Code, ConnectError, createConnectRouter, createContextValues } from "@connectrpc/connect"
import { universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node"
import type { UniversalHandler, UniversalServerRequest } from "@connectrpc/connect/protocol"
import type * as http from "node:http"
import type * as http2 from "node:http2"
import type { Context, Deferred, Effect, Runtime } from "effect"
import type { Authenticator } from "../../ports/Authenticator.js"
import { authInterceptor, emptyBodyFor, makeAuthCheck, type Verdict, withVerdict } from "./AuthInterceptor.js"
import { acceptCompression, answerClientFaults } from "./ClientFaults.js"
import { makeEffectHandlers } from "./EffectHandlers.js"
import type { IdentityOptions } from "./ForwardedIdentity.js"
import { makeRoutes, type RpcServices } from "./ConnectRoutes.js"
import { rpcMetrics } from "./RpcMetrics.js"
import { addServerReflection } from "./ServerReflection.js"

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest
type NodeResponse = http.ServerResponse | http2.Http2ServerResponse

async function* onlyChunk(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes
}

/** A refused call's request with an empty message for its body (see `emptyBodyFor`); its own body is never read. */
const unread = (request: UniversalServerRequest, verdict: Verdict): UniversalServerRequest => {
  const empty = "refusal" in verdict ? emptyBodyFor(request.header.get("content-type") ?? "") : undefined
  if (empty === undefined) return request
  const header = new Headers(request.header)
  for (const name of ["content-encoding", "connect-content-encoding", "grpc-encoding", "content-length"]) header.delete(name)
  return { ...request, header, body: onlyChunk(empty) }
}

/**
 * The Node request handler for every served RPC, in Connect (binary and JSON), gRPC and gRPC-Web,
 * accepting gzip and brotli request bodies up to `maxRequestBytes` (decompressed), compressing responses of
 * `compressMinBytes` or more for clients that accept it. What `connectNodeAdapter` does, with each procedure's
 * handler wrapped so that faults of the client's bytes are answered `InvalidArgument` (see `ClientFaults`).
 * With authentication on, every call needs a credential with its service's role, checked before its body is read
 * (`AuthInterceptor`). gRPC server reflection lists every service served.
 */
export const makeConnectHandler = (options: {
  readonly runtime: Runtime.Runtime<RpcServices>
  readonly shuttingDown: Deferred.Deferred<void>
  readonly gate: Effect.Effect<void, unknown>
  readonly maxRequestBytes: number
  readonly compressMinBytes: number
  readonly identity: IdentityOptions
  readonly authenticator: Context.Tag.Service<Authenticator>
  /** Observe every RPC in the metrics (`runs.metrics.enabled`); off, no interceptor runs. */
  readonly metrics?: boolean
}) => {
  const router = createConnectRouter({
    // Metrics first: a call refused for its credential is observed too.
    interceptors: [
      ...(options.metrics === true ? [rpcMetrics] : []),
      ...(options.authenticator.enabled ? [authInterceptor] : [])
    ],
    readMaxBytes: options.maxRequestBytes,
    compressMinBytes: options.compressMinBytes,
    acceptCompression,
    jsonOptions: { ignoreUnknownFields: true }
  })
  const handlers = makeEffectHandlers(options)
  makeRoutes(handlers, options.identity)(router)
  addServerReflection(router, handlers)
  const byPath = new Map<string, UniversalHandler>(
    router.handlers.map((handler) => [handler.requestPath, answerClientFaults(handler)])
  )
  const check = options.authenticator.enabled ? makeAuthCheck(options.authenticator, options.runtime) : undefined
  const answer = async (handler: UniversalHandler, req: NodeRequest, res: NodeResponse) => {
    if (check === undefined) return handler(universalRequestFromNodeRequest(req, res, undefined, undefined))
    const values = createContextValues()
    const request = universalRequestFromNodeRequest(req, res, undefined, values)
    const verdict = await check(handler.service.typeName, handler.method.name, request.header, request.signal)
    withVerdict(values, verdict)
    return handler(unread(request, verdict))
  }
  return (req: NodeRequest, res: NodeResponse): void => {
    const handler = byPath.get((req.url ?? "").split("?", 1)[0]!)
    if (handler === undefined) {
      res.writeHead(404)
      res.end()
      return
    }
    answer(handler, req, res)
      .then((response) => universalResponseToNodeResponse(response, res))
      .catch((reason: unknown) => {
        // The client went away mid-answer: nothing to tell anyone.
        if (ConnectError.from(reason).code !== Code.Aborted) res.destroy()
      })
  }
}
