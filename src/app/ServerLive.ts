import { Context, Deferred, Duration, Effect, Layer, Option } from "effect"
import { makeConnectHandler } from "../adapters/connect/ConnectHandler.js"
import type { RpcServices } from "../adapters/connect/ConnectRoutes.js"
import type { IdentityOptions } from "../adapters/connect/ForwardedIdentity.js"
import { serveHttp } from "../adapters/http/HttpServer.js"
import { Authenticator } from "../ports/Authenticator.js"
import { Readiness } from "../ports/Readiness.js"
import type { AppConfig } from "./AppConfig.js"
import { MetricsEndpoint } from "./MetricsLive.js"

/** Where the server listens (the port is the real one when the config asked for port 0). */
export class ServerAddress extends Context.Tag("runs/ServerAddress")<ServerAddress, {
  readonly host: string
  readonly port: number
}>() {}

/** The listening server: RPCs (authenticated when `runs.auth` is on), health checks and CORS on `runs.server.host:port`. */
export const layerServer = (config: AppConfig["server"], identity: IdentityOptions) =>
  Layer.scoped(
    ServerAddress,
    Effect.gen(function*() {
      const runtime = yield* Effect.runtime<RpcServices>()
      const readiness = yield* Readiness
      const authenticator = yield* Authenticator
      const shuttingDown = yield* Deferred.make<void>()
      // Metrics are on when the app was given them (`runs.metrics.enabled`); off, nothing observes the RPCs.
      const metrics = Option.getOrUndefined(yield* Effect.serviceOption(MetricsEndpoint))
      const rpc = makeConnectHandler({
        runtime,
        shuttingDown,
        gate: readiness.migrated,
        maxRequestBytes: config.maxRequestBytes,
        compressMinBytes: config.compressMinBytes,
        identity,
        authenticator,
        metrics: metrics !== undefined
      })
      const server = yield* serveHttp({
        host: config.host,
        port: config.port,
        corsOrigins: config.corsOrigins,
        shutdownTimeoutMs: Duration.toMillis(config.shutdownTimeout),
        maxRequestBytes: config.maxRequestBytes,
        headerTimeoutMs: Duration.toMillis(config.headerTimeout),
        idleTimeoutMs: Duration.toMillis(config.idleTimeout),
        tls: config.tls,
        rpc,
        ...(metrics?.handler === undefined ? {} : { metrics: metrics.handler }),
        readiness: readiness.check.pipe(
          Effect.match({
            onSuccess: () => ({ ready: true }),
            onFailure: (notReady) => ({ ready: false, reason: notReady.reason })
          })
        ),
        beforeClose: Effect.zipRight(
          Effect.logInfo("shutting down: no new connections; open streams end with Unavailable"),
          Deferred.succeed(shuttingDown, undefined)
        )
      })
      const protocols = config.tls === undefined ? "HTTP/1.1 and h2c" : "HTTPS: HTTP/2 and HTTP/1.1"
      yield* Effect.logInfo(`listening on ${config.host}:${server.port} (${protocols})`)
      return { host: config.host, port: server.port }
    })
  )
