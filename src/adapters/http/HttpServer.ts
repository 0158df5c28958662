import { Effect, Runtime, type Scope } from "effect"
import { makeCors } from "./Cors.js"
import { listenDualProtocol, type ListenError, type ListeningServer, type RequestHandler } from "./DualProtocolServer.js"
import type { TlsSettings } from "./Tls.js"

export interface ReadinessResult {
  readonly ready: boolean
  readonly reason?: string
}

export interface HttpServerOptions {
  readonly host: string
  readonly port: number
  readonly corsOrigins: ReadonlyArray<string>
  readonly shutdownTimeoutMs: number
  readonly maxRequestBytes: number
  readonly headerTimeoutMs: number
  readonly idleTimeoutMs: number
  /** HTTPS (HTTP/2 and HTTP/1.1 by ALPN) instead of cleartext. */
  readonly tls?: TlsSettings | undefined
  /** The RPC handler (Connect, gRPC, gRPC-Web). */
  readonly rpc: RequestHandler
  /** Answers `GET /metrics` when set (the metrics are on and served on this port). */
  readonly metrics?: RequestHandler
  /** Answers `/readyz`. */
  readonly readiness: Effect.Effect<ReadinessResult>
  /** Runs first when the server is asked to stop (e.g. to end open streams). */
  readonly beforeClose: Effect.Effect<void>
}

const plain = (res: Parameters<RequestHandler>[1], status: number, body: string) => {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" })
  res.end(body)
}

/**
 * Serves `/healthz`, `/readyz` and the RPCs on one port, with CORS. The server stops with its scope:
 * it stops accepting, lets open requests finish up to the deadline, then closes what is left.
 */
export const serveHttp = (options: HttpServerOptions): Effect.Effect<ListeningServer, ListenError, Scope.Scope> =>
  Effect.gen(function*() {
    const runReadiness = Runtime.runPromise(yield* Effect.runtime<never>())
    const cors = makeCors(options.corsOrigins)
    const handler: RequestHandler = (req, res) => {
      const path = (req.url ?? "/").split("?")[0]
      if (req.method === "GET" || req.method === "HEAD") {
        if (path === "/healthz") return plain(res, 200, "OK")
        if (path === "/metrics" && options.metrics !== undefined) return options.metrics(req, res)
        if (path === "/readyz") {
          runReadiness(options.readiness).then(
            (result) => plain(res, result.ready ? 200 : 503, result.ready ? "OK" : `not ready: ${result.reason ?? "unknown"}`),
            () => plain(res, 503, "not ready")
          )
          return
        }
      }
      if (cors(req, res)) return
      options.rpc(req, res)
    }
    return yield* Effect.acquireRelease(
      listenDualProtocol({
        host: options.host,
        port: options.port,
        handler,
        maxRequestBytes: options.maxRequestBytes,
        headerTimeoutMs: options.headerTimeoutMs,
        idleTimeoutMs: options.idleTimeoutMs,
        tls: options.tls
      }),
      (server) => Effect.zipRight(options.beforeClose, Effect.promise(() => server.close(options.shutdownTimeoutMs)))
    )
  })
