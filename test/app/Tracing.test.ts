import { createClient } from "@connectrpc/connect"
import { createConnectTransport } from "@connectrpc/connect-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit, Layer, Logger, LogLevel, Scope } from "effect"
import { mkdtempSync } from "node:fs"
import * as http from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import { appLayer } from "../../src/app/AppLayer.js"
import { loadConfig } from "../../src/app/Config.js"
import { layerTelemetry } from "../../src/app/Telemetry.js"
import { telemetrySettings } from "../../src/app/TelemetrySettings.js"
import { createNamed } from "../support/RunRequests.js"
import { freePort } from "../support/ServiceProcess.js"

interface ReceivedSpan {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId?: string
  readonly name: string
  readonly kind: number
  readonly attributes: ReadonlyArray<{ readonly key: string; readonly value: Record<string, unknown> }>
}

/** An OTLP/HTTP JSON receiver: keeps every span posted to `/v1/traces`. */
const otlpReceiver = Effect.acquireRelease(
  Effect.async<{ readonly url: string; readonly spans: Array<ReceivedSpan>; readonly server: http.Server }>((resume) => {
    const spans: Array<ReceivedSpan> = []
    const server = http.createServer((req, res) => {
      let body = ""
      req.on("data", (chunk) => (body += String(chunk)))
      req.on("end", () => {
        if (req.url === "/v1/traces") {
          const parsed = JSON.parse(body) as {
            resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<ReceivedSpan> }> }>
          }
          for (const resource of parsed.resourceSpans) for (const scope of resource.scopeSpans) spans.push(...scope.spans)
        }
        res.writeHead(200, { "content-type": "application/json" })
        res.end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      resume(Effect.succeed({ url: `http://127.0.0.1:${port}`, spans, server }))
    })
  }),
  ({ server }) =>
    Effect.async<void>((resume) => {
      server.close(() => resume(Effect.void))
    })
)

const attribute = (span: ReceivedSpan, key: string) => {
  const value = span.attributes.find((a) => a.key === key)?.value
  return value === undefined ? undefined : Object.values(value)[0]
}

describe("OpenTelemetry traces", () => {
  it.live("a CreateRun's span continues the caller's traceparent, with the use case and its SQL statements below it", () =>
    Effect.scoped(Effect.gen(function*() {
      const receiver = yield* otlpReceiver
      const settings = Either.getOrThrow(telemetrySettings({
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_SERVICE_NAME: "runs-test"
      }))
      const dir = mkdtempSync(join(tmpdir(), "runs-tracing-"))
      const port = yield* freePort
      const { config } = yield* loadConfig({
        argv: [],
        env: {
          RUNS_SERVER_HOST: "127.0.0.1",
          RUNS_SERVER_PORT: String(port),
          RUNS_SERVER_SHUTDOWN_TIMEOUT: "1s",
          DATABASE_SQLITE_FILE: join(dir, "runs.db"),
          RUNS_STORAGE_PREFIX: pathToFileURL(join(dir, "data")).href
        },
        cwd: dir
      }).pipe(Effect.orDie)
      // Built outside an acquireRelease (its fibers must stay interruptible); stopping it flushes the spans.
      const scope = yield* Scope.make()
      yield* Layer.buildWithScope(
        appLayer(config).pipe(Layer.provide(Logger.minimumLogLevel(LogLevel.Warning)), Layer.provide(layerTelemetry(settings))),
        scope
      ).pipe(Effect.orDie)

      const traceId = "4bf92f3577b34da6a3ce929d0e0e4736"
      const callerSpanId = "00f067aa0ba902b7"
      const runs = createClient(RunService, createConnectTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: "1.1" }))
      yield* Effect.promise(() =>
        runs.createRun(createNamed("traced-run"), { headers: { traceparent: `00-${traceId}-${callerSpanId}-01` } })
      )
      yield* Scope.close(scope, Exit.void)

      const inTrace = receiver.spans.filter((span) => span.traceId === traceId)
      const rpc = inTrace.find((span) => span.name === "flyteidl2.workflow.RunService/CreateRun")
      expect(rpc?.parentSpanId).toBe(callerSpanId)
      expect(rpc?.kind).toBe(2) // SERVER
      expect([attribute(rpc!, "rpc.system"), attribute(rpc!, "rpc.service"), attribute(rpc!, "rpc.method")])
        .toEqual(["connect_rpc", "flyteidl2.workflow.RunService", "CreateRun"])
      // Every span of the trace below the RPC's: the use case, the store, the SQL statements.
      const below = new Set([rpc!.spanId])
      let grown = true
      while (grown) {
        grown = false
        for (const span of inTrace) {
          if (span.parentSpanId !== undefined && below.has(span.parentSpanId) && !below.has(span.spanId)) {
            below.add(span.spanId)
            grown = true
          }
        }
      }
      const names = inTrace.filter((span) => below.has(span.spanId)).map((span) => span.name)
      expect(names).toContain("Runs.create")
      const sql = inTrace.filter((span) => below.has(span.spanId) && span.name === "sql.execute")
      expect(sql.length).toBeGreaterThan(0)
      expect(sql.some((span) => String(attribute(span, "db.statement") ?? attribute(span, "db.query.text")).includes("INSERT")))
        .toBe(true)
    })), 30_000)

  it("reads the standard variables: none set is off; a bad protocol is an error naming the variable", () => {
    expect(telemetrySettings({})).toEqual(Either.right({ traces: undefined, metrics: undefined, serviceName: "runs-service" }))
    expect(telemetrySettings({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/", OTEL_SERVICE_NAME: "runs" }))
      .toEqual(Either.right({
        traces: { url: "http://collector:4318/v1/traces", protocol: "http/protobuf" },
        metrics: { url: "http://collector:4318/v1/metrics", protocol: "http/protobuf" },
        serviceName: "runs"
      }))
    expect(telemetrySettings({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://c/traces" })).toEqual(Either.right({
      traces: { url: "http://c/traces", protocol: "http/protobuf" },
      metrics: undefined,
      serviceName: "runs-service"
    }))
    expect(telemetrySettings({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c", OTEL_SDK_DISABLED: "true" }))
      .toEqual(Either.right({ traces: undefined, metrics: undefined, serviceName: "runs-service" }))
    expect(Either.getLeft(telemetrySettings({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" })))
      .toEqual(expect.objectContaining({ _tag: "Some", value: expect.stringContaining("OTEL_EXPORTER_OTLP_PROTOCOL") }))
  })
})
