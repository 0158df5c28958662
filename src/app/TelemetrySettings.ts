import { Either } from "effect"

export type Env = Record<string, string | undefined>

export const set = (env: Env, name: string): string | undefined => {
  const value = env[name]?.trim()
  return value === undefined || value === "" ? undefined : value
}

/** Where a signal goes: its own variable as it is, else the general endpoint with the signal's path. */
const endpoint = (env: Env, signal: "traces" | "metrics"): string | undefined => {
  const own = set(env, `OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_ENDPOINT`)
  if (own !== undefined) return own
  const base = set(env, "OTEL_EXPORTER_OTLP_ENDPOINT")
  return base === undefined ? undefined : `${base.replace(/\/+$/, "")}/v1/${signal}`
}

const protocolOf = (env: Env, signal: "traces" | "metrics"): Either.Either<"http/protobuf" | "http/json", string> => {
  const name = `OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_PROTOCOL`
  const protocol = set(env, name) ?? set(env, "OTEL_EXPORTER_OTLP_PROTOCOL") ?? "http/protobuf"
  return protocol === "http/protobuf" || protocol === "http/json"
    ? Either.right(protocol)
    : Either.left(`${name} or OTEL_EXPORTER_OTLP_PROTOCOL: expected http/protobuf or http/json, got ${JSON.stringify(protocol)}`)
}

export interface TelemetrySettings {
  readonly traces: { readonly url: string; readonly protocol: "http/protobuf" | "http/json" } | undefined
  readonly metrics: { readonly url: string; readonly protocol: "http/protobuf" | "http/json" } | undefined
  readonly serviceName: string
}

/**
 * What the standard OpenTelemetry variables ask for: traces and metrics each exported over OTLP/HTTP when an
 * endpoint is set for them (`OTEL_EXPORTER_OTLP_ENDPOINT`, or `..._TRACES_ENDPOINT` / `..._METRICS_ENDPOINT`),
 * nothing when none is or `OTEL_SDK_DISABLED=true`. `OTEL_TRACES_SAMPLER` and its argument, `OTEL_EXPORTER_OTLP_HEADERS`,
 * `OTEL_BSP_*`, `OTEL_METRIC_EXPORT_INTERVAL` and `OTEL_RESOURCE_ATTRIBUTES` are read by the SDK itself.
 */
export const telemetrySettings = (env: Env): Either.Either<TelemetrySettings, string> =>
  Either.gen(function*() {
    const serviceName = set(env, "OTEL_SERVICE_NAME") ?? "runs-service"
    if (set(env, "OTEL_SDK_DISABLED")?.toLowerCase() === "true") {
      return { traces: undefined, metrics: undefined, serviceName }
    }
    const tracesUrl = endpoint(env, "traces")
    const metricsUrl = endpoint(env, "metrics")
    return {
      traces: tracesUrl === undefined ? undefined : { url: tracesUrl, protocol: yield* protocolOf(env, "traces") },
      metrics: metricsUrl === undefined ? undefined : { url: metricsUrl, protocol: yield* protocolOf(env, "metrics") },
      serviceName
    }
  })
