import { Context, Effect, Layer } from "effect"
import * as http from "node:http"
import * as MetricReadingsLive from "../adapters/metrics/MetricReadingsLive.js"
import { type MetricsHandler, make as makePrometheus } from "../adapters/metrics/PrometheusMetrics.js"
import type { MetricReadings } from "../ports/Metrics.js"
import type { AppConfig } from "./AppConfig.js"

/** The metrics are on: the server observes every RPC, and answers `/metrics` with `handler` when it is set. */
export class MetricsEndpoint extends Context.Tag("runs/MetricsEndpoint")<MetricsEndpoint, {
  /** Answers `GET /metrics` on the service's port; undefined when the metrics have a port of their own. */
  readonly handler: MetricsHandler | undefined
  /** The port of their own, when they have one (the real one when asked for port 0). */
  readonly port: number | undefined
}>() {}

/** `/metrics` alone on a port of its own, closed with the scope. */
const listenAlone = (handler: MetricsHandler, host: string, port: number) =>
  Effect.acquireRelease(
    Effect.async<http.Server, Error>((resume) => {
      const server = http.createServer((req, res) => {
        const path = (req.url ?? "/").split("?")[0]
        if ((req.method === "GET" || req.method === "HEAD") && path === "/metrics") return handler(req, res)
        res.writeHead(404, { "content-type": "text/plain; charset=utf-8" })
        res.end("not found: the metrics are at /metrics")
      })
      server.once("error", (error) => resume(Effect.fail(new Error(`metrics: cannot listen on ${host}:${port}: ${error.message}`))))
      server.listen(port, host, () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      })
  )

/**
 * `runs.metrics`: when enabled, the readings every layer built with them registers, and where `/metrics` is served
 * (on the service's port, or `port` of its own on `host`). When disabled, nothing: no interceptor, no readings.
 */
export const layerMetrics = (
  config: AppConfig["metrics"],
  host: string
): Layer.Layer<MetricsEndpoint | MetricReadings, Error> | Layer.Layer<never> =>
  config.enabled
    ? Layer.scoped(
      MetricsEndpoint,
      Effect.gen(function*() {
        const { handler } = yield* makePrometheus
        if (config.port === undefined) return { handler, port: undefined }
        const server = yield* listenAlone(handler, host, config.port)
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : config.port
        yield* Effect.logInfo(`metrics: listening on ${host}:${port}/metrics`)
        return { handler: undefined, port }
      })
    ).pipe(Layer.provideMerge(MetricReadingsLive.layer))
    : Layer.empty
