import { connectNodeAdapter } from "@connectrpc/connect-node"
import type { Deferred, Effect, Runtime } from "effect"
import { makeEffectHandlers } from "./EffectHandlers.js"
import type { IdentityOptions } from "./ForwardedIdentity.js"
import { makeRoutes, type RpcServices } from "./ConnectRoutes.js"
import { rpcMetrics } from "./RpcMetrics.js"

/**
 * The Node request handler for every served RPC, in Connect (binary and JSON), gRPC and gRPC-Web,
 * accepting gzip and brotli request bodies up to `maxRequestBytes` (decompressed), compressing responses of
 * `compressMinBytes` or more for clients that accept it.
 */
export const makeConnectHandler = (options: {
  readonly runtime: Runtime.Runtime<RpcServices>
  readonly shuttingDown: Deferred.Deferred<void>
  readonly gate: Effect.Effect<void, unknown>
  readonly maxRequestBytes: number
  readonly compressMinBytes: number
  readonly identity: IdentityOptions
  /** Observe every RPC in the metrics (`runs.metrics.enabled`); off, no interceptor runs. */
  readonly metrics?: boolean
}) =>
  connectNodeAdapter({
    routes: makeRoutes(makeEffectHandlers(options), options.identity),
    readMaxBytes: options.maxRequestBytes,
    compressMinBytes: options.compressMinBytes,
    jsonOptions: { ignoreUnknownFields: true },
    interceptors: options.metrics === true ? [rpcMetrics] : []
  })
