import { Effect, Metric, Runtime } from "effect"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2"
import * as Prom from "prom-client"
import * as Metrics from "../../ports/Metrics.js"
import { prometheusText } from "./PrometheusText.js"

// prom-client's process and runtime collectors (resident memory, CPU, event loop lag, GC, heap) watch the
// process itself, so one set serves every exporter in it: started once, on the first `make`.
let processRegistry: Prom.Registry | undefined
const processMetrics = (): Prom.Registry => {
  if (processRegistry === undefined) {
    processRegistry = new Prom.Registry()
    Prom.collectDefaultMetrics({ register: processRegistry })
  }
  return processRegistry
}

// Series without labels are shown from the start, at zero, so a rate over them has a first point.
const registerUnlabelled = () => {
  for (const metric of [
    Metrics.changesPublished,
    Metrics.eventsIngested,
    Metrics.retentionDeleted,
    Metrics.outboxPending,
    Metrics.outboxOldestAge
  ]) metric.register()
}

export type MetricsHandler = (
  req: IncomingMessage | Http2ServerRequest,
  res: ServerResponse | Http2ServerResponse
) => void

/**
 * The Prometheus exposition: the gauges read when scraped (`MetricReadings`), then every Effect metric, then the
 * process's own. A scrape costs the service nothing between scrapes.
 */
export const make = Effect.gen(function*() {
  const readings = yield* Metrics.MetricReadings
  const runtime = processMetrics()
  registerUnlabelled()
  const scrape = Effect.zipRight(
    readings.readAll,
    Effect.zipWith(
      Metric.snapshot,
      Effect.promise(() => runtime.metrics()),
      (pairs, process) => prometheusText(pairs) + process
    )
  )
  const run = Runtime.runPromise(yield* Effect.runtime<never>())
  const handler: MetricsHandler = (_req, res) => {
    run(scrape).then(
      (body) => {
        res.writeHead(200, { "content-type": runtime.contentType, "cache-control": "no-store" })
        res.end(body)
      },
      (error: unknown) => {
        res.writeHead(500, { "content-type": "text/plain; charset=utf-8" })
        res.end(`cannot read the metrics: ${error instanceof Error ? error.message : String(error)}`)
      }
    )
  }
  return { scrape, handler }
})
