import { connectNodeAdapter } from "@connectrpc/connect-node"
import type { Context, Deferred, Effect, Runtime } from "effect"
import type { Authenticator } from "../../ports/Authenticator.js"
import { makeAuthInterceptor } from "./AuthInterceptor.js"
import { makeEffectHandlers } from "./EffectHandlers.js"
import type { IdentityOptions } from "./ForwardedIdentity.js"
import { makeRoutes, type RpcServices } from "./ConnectRoutes.js"

/**
 * The Node request handler for every served RPC, in Connect (binary and JSON), gRPC and gRPC-Web,
 * accepting gzip and brotli request bodies up to `maxRequestBytes` (decompressed), compressing responses of
 * `compressMinBytes` or more for clients that accept it. With authentication on, every call needs a
 * credential with its service's role (`AuthInterceptor`).
 */
export const makeConnectHandler = (options: {
  readonly runtime: Runtime.Runtime<RpcServices>
  readonly shuttingDown: Deferred.Deferred<void>
  readonly gate: Effect.Effect<void, unknown>
  readonly maxRequestBytes: number
  readonly compressMinBytes: number
  readonly identity: IdentityOptions
  readonly authenticator: Context.Tag.Service<Authenticator>
}) =>
  connectNodeAdapter({
    routes: makeRoutes(makeEffectHandlers(options), options.identity),
    interceptors: options.authenticator.enabled ? [makeAuthInterceptor(options.authenticator, options.runtime)] : [],
    readMaxBytes: options.maxRequestBytes,
    compressMinBytes: options.compressMinBytes,
    jsonOptions: { ignoreUnknownFields: true }
  })
