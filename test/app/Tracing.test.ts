import { create } from "@bufbuild/protobuf"
import { Code, ConnectError, createClient } from "@connectrpc/connect"
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Either, Exit, Layer, Logger, LogLevel, Scope } from "effect"
import { mkdtempSync } from "node:fs"
import * as http from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ActionPhase } from "#gen/flyteidl2/common/phase_pb.js"
import {
  InternalRunService,
  RecordActionEventStreamRequestSchema
} from "#gen/flyteidl2/workflow/internal_run_service_pb.js"
import { RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import { appLayer } from "../../src/app/AppLayer.js"
import { layerTelemetry } from "../../src/app/Telemetry.js"
import { telemetrySettings } from "../../src/app/TelemetrySettings.js"
import { createNamed, project } from "../support/RunRequests.js"
import { freePort } from "../support/ServiceProcess.js"
import { inProcessConfig } from "../support/TestApp.js"
import { freshPostgresUrl, postgresAdminUrl } from "../support/TestDatabases.js"
import { makeTestExecutor } from "../support/TestExecutor.js"

interface ReceivedSpan {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId?: string
  readonly name: string
  readonly kind: number
  readonly attributes: ReadonlyArray<{ readonly key: string; readonly value: Record<string, unknown> }>
  readonly status?: { readonly code?: number }
}

const SERVER = 2
const STATUS_OK = 1
const STATUS_ERROR = 2

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

/** The spans of `spans` below `root` (its children, theirs, ...). */
const below = (spans: ReadonlyArray<ReceivedSpan>, root: ReceivedSpan): ReadonlyArray<ReceivedSpan> => {
  const ids = new Set([root.spanId])
  let grown = true
  while (grown) {
    grown = false
    for (const span of spans) {
      if (span.parentSpanId !== undefined && ids.has(span.parentSpanId) && !ids.has(span.spanId)) {
        ids.add(span.spanId)
        grown = true
      }
    }
  }
  return spans.filter((span) => span !== root && ids.has(span.spanId))
}

const traceparent = (traceId: string, spanId: string) => ({ headers: { traceparent: `00-${traceId}-${spanId}-01` } })

interface Database {
  readonly name: "sqlite" | "postgres"
  readonly skip: boolean
  /** The configuration variables that choose it; a Postgres database is dropped with the scope. */
  readonly env: (dir: string) => Effect.Effect<Record<string, string>, unknown, Scope.Scope>
}

const databases: ReadonlyArray<Database> = [
  { name: "sqlite", skip: false, env: (dir) => Effect.succeed({ DATABASE_SQLITE_FILE: join(dir, "runs.db") }) },
  {
    name: "postgres",
    skip: postgresAdminUrl() === undefined,
    env: () =>
      Effect.map(freshPostgresUrl, ({ name, url }) => {
        const parsed = new URL(url)
        return {
          DATABASE_POSTGRES_HOST: parsed.hostname,
          DATABASE_POSTGRES_PORT: parsed.port === "" ? "5432" : parsed.port,
          DATABASE_POSTGRES_DBNAME: name,
          DATABASE_POSTGRES_USERNAME: decodeURIComponent(parsed.username),
          ...(parsed.password === "" ? {} : { DATABASE_POSTGRES_PASSWORD: decodeURIComponent(parsed.password) }),
          DATABASE_POSTGRES_EXTRAOPTIONS: "sslmode=disable"
        }
      })
  }
]

/**
 * The service in this process, exporting its spans to `receiver` over OTLP/HTTP JSON, once its migrations are
 * applied (its log says so). Closing `scope` stops it, which flushes the spans.
 */
const startService = (database: Database, receiver: { readonly url: string }, env: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const settings = Either.getOrThrow(telemetrySettings({
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_SERVICE_NAME: "runs-test"
    }))
    const dir = mkdtempSync(join(tmpdir(), "runs-tracing-"))
    const port = yield* freePort
    const config = yield* inProcessConfig(dir, port, { ...(yield* database.env(dir)), ...env })
    const migrated = yield* Deferred.make<void>()
    // Warnings and errors are shown as usual; the line that says the database is ready is waited for.
    const logger = Logger.make<unknown, void>((options) => {
      const text = Array.isArray(options.message) ? options.message.join(" ") : String(options.message)
      if (text.includes("database migrations applied")) Deferred.unsafeDone(migrated, Exit.void)
      if (LogLevel.greaterThanEqual(options.logLevel, LogLevel.Warning)) Logger.defaultLogger.log(options)
    })
    // Built outside an acquireRelease (its fibers must stay interruptible); stopping it flushes the spans.
    const scope = yield* Scope.make()
    yield* Layer.buildWithScope(
      appLayer(config).pipe(
        Layer.provide(Layer.merge(Logger.replace(Logger.defaultLogger, logger), Logger.minimumLogLevel(LogLevel.Info))),
        Layer.provide(layerTelemetry(settings))
      ),
      scope
    ).pipe(Effect.orDie)
    yield* Deferred.await(migrated)
    const baseUrl = `http://127.0.0.1:${port}`
    return {
      runs: createClient(RunService, createConnectTransport({ baseUrl, httpVersion: "1.1" })),
      // Bidirectional streams need HTTP/2; gRPC, as executors call.
      internal: createClient(InternalRunService, createGrpcTransport({ baseUrl })),
      stop: Scope.close(scope, Exit.void)
    }
  })

for (const database of databases) {
  describe.skipIf(database.skip)(`OpenTelemetry traces [${database.name}]`, () => {
    it.live("a CreateRun's span continues the caller's traceparent, with the use case and its SQL statements below it", () =>
      Effect.scoped(Effect.gen(function*() {
        const receiver = yield* otlpReceiver
        const service = yield* startService(database, receiver)
        const traceId = "4bf92f3577b34da6a3ce929d0e0e4736"
        const callerSpanId = "00f067aa0ba902b7"
        yield* Effect.promise(() => service.runs.createRun(createNamed("traced-run"), traceparent(traceId, callerSpanId)))
        yield* service.stop

        const inTrace = receiver.spans.filter((span) => span.traceId === traceId)
        const rpc = inTrace.find((span) => span.name === "flyteidl2.workflow.RunService/CreateRun")
        expect(rpc?.parentSpanId).toBe(callerSpanId)
        expect(rpc?.kind).toBe(SERVER)
        expect([attribute(rpc!, "rpc.system"), attribute(rpc!, "rpc.service"), attribute(rpc!, "rpc.method")])
          .toEqual(["connect_rpc", "flyteidl2.workflow.RunService", "CreateRun"])
        // Every span of the trace below the RPC's: the use case, the store, the SQL statements.
        const under = below(inTrace, rpc!)
        expect(under.map((span) => span.name)).toContain("Runs.create")
        const sql = under.filter((span) => span.name === "sql.execute")
        expect(sql.length).toBeGreaterThan(0)
        expect(sql.some((span) => String(attribute(span, "db.statement") ?? attribute(span, "db.query.text")).includes("INSERT")))
          .toBe(true)
      })), 30_000)

    it.live("a stream's span continues the caller's traceparent and ends with the stream: failed with its code, or completed with each write below it", () =>
      Effect.scoped(Effect.gen(function*() {
        const receiver = yield* otlpReceiver
        const service = yield* startService(database, receiver)
        const { run } = yield* Effect.promise(() => service.runs.createRun(createNamed("streamed-run")))
        const root = run!.action!.id!

        const watchTrace = "0af7651916cd43dd8448eb211c80319c"
        const error = yield* Effect.promise(async () => {
          try {
            for await (const _ of service.runs.watchActions(
              { runId: { org: "", project: project.name, domain: project.domain, name: "no-such-run" } },
              traceparent(watchTrace, "b7ad6b7169203331")
            )) void _
            return undefined
          } catch (error) {
            return ConnectError.from(error)
          }
        })
        expect(error?.code).toBe(Code.NotFound)

        const eventsTrace = "5c2d8b1f0e9a4b3c8d7e6f5a4b3c2d1e"
        const events = async function*() {
          yield create(RecordActionEventStreamRequestSchema, {
            request: { event: { id: root, attempt: 1, phase: ActionPhase.RUNNING } },
            nonce: 1n
          })
        }
        const answers = yield* Effect.promise(async () => {
          const codes: Array<number | undefined> = []
          for await (const answer of service.internal.recordActionEventStream(events(), traceparent(eventsTrace, "1a2b3c4d5e6f7a8b"))) {
            codes.push(answer.response?.status?.code)
          }
          return codes
        })
        expect(answers).toEqual([0])
        yield* service.stop

        const watch = receiver.spans.find((span) => span.name === "flyteidl2.workflow.RunService/WatchActions")
        expect([watch?.traceId, watch?.parentSpanId, watch?.kind]).toEqual([watchTrace, "b7ad6b7169203331", SERVER])
        expect([
          attribute(watch!, "rpc.system"),
          attribute(watch!, "rpc.service"),
          attribute(watch!, "rpc.method"),
          attribute(watch!, "rpc.connect_rpc.error_code")
        ]).toEqual(["connect_rpc", "flyteidl2.workflow.RunService", "WatchActions", "not_found"])
        expect(watch?.status?.code).toBe(STATUS_ERROR)
        // The read that found no run was done for the stream.
        expect(below(receiver.spans, watch!).map((span) => span.name)).toContain("SqlRunStore.getRun")

        const stream = receiver.spans.find((span) => span.name === "flyteidl2.workflow.InternalRunService/RecordActionEventStream")
        expect([stream?.traceId, stream?.parentSpanId, stream?.kind]).toEqual([eventsTrace, "1a2b3c4d5e6f7a8b", SERVER])
        expect([attribute(stream!, "rpc.system"), attribute(stream!, "rpc.method"), attribute(stream!, "rpc.grpc.status_code")])
          .toEqual(["grpc", "RecordActionEventStream", "0"])
        expect(stream?.status?.code).toBe(STATUS_OK)
        const under = below(receiver.spans, stream!)
        expect(under.map((span) => span.name)).toContain("Ingestion.recordEvents")
        expect(under.some((span) => span.name === "sql.execute")).toBe(true)
      })), 30_000)

    it.live("the outbox's delivery continues the trace of the CreateRun (and of the AbortRun) that wrote its request", () =>
      Effect.scoped(Effect.gen(function*() {
        const receiver = yield* otlpReceiver
        const executor = yield* makeTestExecutor
        const service = yield* startService(database, receiver, {
          RUNS_DISPATCHER: "actions",
          RUNS_ACTIONS_SERVICE_URL: executor.url
        })
        const createTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
        const abortTrace = "0af7651916cd43dd8448eb211c80319c"
        const { run } = yield* Effect.promise(() =>
          service.runs.createRun(createNamed("dispatched-run"), traceparent(createTrace, "00f067aa0ba902b7")))
        yield* Effect.promise(() =>
          service.runs.abortRun({ runId: run!.action!.id!.run!, reason: "done" }, traceparent(abortTrace, "b7ad6b7169203331")))
        const [enqueue, abort] = yield* executor.received(2)
        yield* service.stop

        for (const [call, traceId, method, useCase] of [
          [enqueue, createTrace, "CreateRun", "Runs.create"],
          [abort, abortTrace, "AbortRun", "Runs.abortRun"]
        ] as const) {
          const inTrace = receiver.spans.filter((span) => span.traceId === traceId)
          const rpc = inTrace.find((span) => span.name === `flyteidl2.workflow.RunService/${method}`)
          const delivery = inTrace.find((span) => span.name === "OutboxWorker.deliver")
          // The delivery hangs below the call that wrote its request, in its trace.
          expect(below(inTrace, rpc!).map((span) => span.name)).toContain("OutboxWorker.deliver")
          expect(inTrace.find((span) => span.spanId === delivery?.parentSpanId)?.name).toBe(useCase)
          // The executor was called in the delivery's trace, from the dispatcher's span below the delivery.
          const dispatched = inTrace.find((span) => span.spanId === call?.traceparent?.split("-")[2])
          expect(call?.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`))
          expect(dispatched?.parentSpanId).toBe(delivery?.spanId)
        }
        expect([enqueue?.kind, abort?.kind]).toEqual(["enqueue", "abort"])
      })), 30_000)
  })
}

describe("OpenTelemetry settings", () => {
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
