import { connectNodeAdapter } from "@connectrpc/connect-node"
import type { Deferred, Effect, Runtime } from "effect"
import { makeEffectHandlers } from "./EffectHandlers.js"
import { makeRoutes } from "./ConnectRoutes.js"

/**
 * The Node request handler for every served RPC, in Connect (binary and JSON), gRPC and gRPC-Web,
 * accepting gzip and brotli request bodies up to `maxRequestBytes` (decompressed).
 */
export const makeConnectHandler = <R>(options: {
  readonly runtime: Runtime.Runtime<R>
  readonly shuttingDown: Deferred.Deferred<void>
  readonly gate: Effect.Effect<void, unknown, R>
  readonly maxRequestBytes: number
}) =>
  connectNodeAdapter({
    routes: makeRoutes(makeEffectHandlers(options)),
    readMaxBytes: options.maxRequestBytes,
    jsonOptions: { ignoreUnknownFields: true }
  })
