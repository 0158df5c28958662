import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { OTLPMetricExporter as JsonMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http"
import { OTLPMetricExporter as ProtoMetricExporter } from "@opentelemetry/exporter-metrics-otlp-proto"
import { OTLPTraceExporter as JsonTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import { OTLPTraceExporter as ProtoTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto"
import { PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics"
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Layer } from "effect"
import { type Env, set, type TelemetrySettings } from "./TelemetrySettings.js"

const metricInterval = (env: Env) => {
  const ms = Number(set(env, "OTEL_METRIC_EXPORT_INTERVAL") ?? "60000")
  return Number.isFinite(ms) && ms > 0 ? ms : 60000
}

/**
 * The OpenTelemetry SDK for `settings`, through `@effect/opentelemetry`: Effect's spans (each RPC, use case and SQL
 * statement) go to the trace exporter, Effect's metrics to the metric exporter. With neither, Effect's tracer is
 * turned off instead: no exporter would read a span, and each `Effect.fn` call would still capture a stack trace.
 */
export const layerTelemetry = (settings: TelemetrySettings, env: Env = {}): Layer.Layer<never> => {
  if (settings.traces === undefined && settings.metrics === undefined) return Layer.setTracerEnabled(false)
  const { metrics, traces } = settings
  const sdk = NodeSdk.layer(() => ({
    resource: { serviceName: settings.serviceName },
    ...(traces === undefined ? {} : {
      spanProcessor: new BatchSpanProcessor(
        traces.protocol === "http/json" ? new JsonTraceExporter({ url: traces.url }) : new ProtoTraceExporter({ url: traces.url })
      )
    }),
    ...(metrics === undefined ? {} : {
      metricReader: new PeriodicExportingMetricReader({
        exporter: metrics.protocol === "http/json"
          ? new JsonMetricExporter({ url: metrics.url })
          : new ProtoMetricExporter({ url: metrics.url }),
        exportIntervalMillis: metricInterval(env)
      })
    })
  }))
  // Metrics alone: spans still have no reader.
  return traces === undefined ? Layer.merge(Layer.discard(sdk), Layer.setTracerEnabled(false)) : Layer.discard(sdk)
}
