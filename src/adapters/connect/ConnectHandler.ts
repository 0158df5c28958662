import { connectNodeAdapter } from "@connectrpc/connect-node"
import type { Deferred, Effect, Runtime } from "effect"
import { makeEffectHandlers } from "./EffectHandlers.js"
import type { IdentityOptions } from "./ForwardedIdentity.js"
import { makeRoutes, type RpcServices } from "./ConnectRoutes.js"
import { addServerReflection } from "./ServerReflection.js"

/**
 * The Node request handler for every served RPC, in Connect (binary and JSON), gRPC and gRPC-Web,
 * accepting gzip and brotli request bodies up to `maxRequestBytes` (decompressed), compressing responses of
 * `compressMinBytes` or more for clients that accept it; with gRPC server reflection listing every one of them.
 */
export const makeConnectHandler = (options: {
  readonly runtime: Runtime.Runtime<RpcServices>
  readonly shuttingDown: Deferred.Deferred<void>
  readonly gate: Effect.Effect<void, unknown>
  readonly maxRequestBytes: number
  readonly compressMinBytes: number
  readonly identity: IdentityOptions
}) =>
{
  const handlers = makeEffectHandlers(options)
  return connectNodeAdapter({
    routes: (router) => {
      makeRoutes(handlers, options.identity)(router)
      addServerReflection(router, handlers)
    },
    readMaxBytes: options.maxRequestBytes,
    compressMinBytes: options.compressMinBytes,
    jsonOptions: { ignoreUnknownFields: true }
  })
}
