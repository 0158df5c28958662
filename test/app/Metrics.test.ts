import { Code, ConnectError, createClient } from "@connectrpc/connect"
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Logger, LogLevel, Metric, Scope, Exit } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { InternalRunService } from "#gen/flyteidl2/workflow/internal_run_service_pb.js"
import { RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import { prometheusText } from "../../src/adapters/metrics/PrometheusText.js"
import { appLayer } from "../../src/app/AppLayer.js"
import { runSteps, scriptedRun } from "../../src/app/client/ExecutorScript.js"
import { createNamed } from "../support/RunRequests.js"
import { parseExposition, scrape, scrapeUntil, type Sample, valueOf } from "../support/Scrape.js"
import { freePort } from "../support/ServiceProcess.js"
import { inProcessConfig } from "../support/TestApp.js"
import { openStream } from "../watch/WatchSupport.js"

const runService = "flyteidl2.workflow.RunService"
const internalService = "flyteidl2.workflow.InternalRunService"

/**
 * The whole service in this process on SQLite, as `npm start` builds it from these settings. Not built inside an
 * `acquireRelease`: its background fibers would inherit the acquisition's uninterruptibility and never stop.
 */
const startApp = (env: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const dir = mkdtempSync(join(tmpdir(), "runs-metrics-"))
    const port = yield* freePort
    const config = yield* inProcessConfig(dir, port, { DATABASE_SQLITE_FILE: join(dir, "runs.db"), ...env })
    const scope = yield* Scope.make()
    yield* Layer.buildWithScope(
      appLayer(config).pipe(Layer.provide(Logger.minimumLogLevel(LogLevel.Warning))),
      scope
    ).pipe(Effect.orDie)
    const stop = Scope.close(scope, Exit.void)
    // Stopped with the test's scope, or before by `stop` (closing a scope again does nothing).
    yield* Effect.addFinalizer(() => stop)
    const url = `http://127.0.0.1:${port}`
    return { url, metricsUrl: `${url}/metrics`, stop }
  })

const clientsAt = (url: string) => ({
  connect: createClient(RunService, createConnectTransport({ baseUrl: url, httpVersion: "1.1" })),
  grpc: createClient(RunService, createGrpcTransport({ baseUrl: url })),
  grpcWeb: createClient(RunService, createGrpcWebTransport({ baseUrl: url, httpVersion: "1.1" })),
  internal: createClient(InternalRunService, createConnectTransport({ baseUrl: url, httpVersion: "1.1" })),
  watch: createClient(RunService, createConnectTransport({ baseUrl: url, httpVersion: "2" }))
})

const call = <A>(f: () => Promise<A>) => Effect.promise(f)
const codeOf = (f: () => Promise<unknown>) =>
  Effect.promise(() => f().then(() => undefined, (error: unknown) => ConnectError.from(error).code))

const rpc = (system: string, service: string, method: string, outcome: Record<string, string> = {}) => ({
  rpc_system: system,
  rpc_service: service,
  rpc_method: method,
  ...outcome
})

/** The difference of every asked value between two scrapes (metrics are per process, so tests compare). */
const delta = (before: ReadonlyArray<Sample>, after: ReadonlyArray<Sample>) =>
(name: string, labels: Record<string, string> = {}) => valueOf(after, name, labels) - valueOf(before, name, labels)

describe("metrics at /metrics", () => {
  it.live("observes unary calls of every protocol by outcome, as the Go original's dashboards chart them", () =>
    Effect.scoped(Effect.gen(function*() {
      const app = yield* startApp()
      const clients = clientsAt(app.url)
      const before = (yield* scrape(app.metricsUrl)).samples

      yield* call(() => clients.connect.createRun(createNamed("metrics-ok")))
      const runId = { org: "", project: "flytesnacks", domain: "development", name: "metrics-ok" }
      expect(yield* codeOf(() => clients.connect.getRunDetails({}))).toBe(Code.InvalidArgument)
      const missing = { ...runId, name: "metrics-missing" }
      expect(yield* codeOf(() => clients.connect.getRunDetails({ runId: missing }))).toBe(Code.NotFound)
      yield* call(() => clients.grpc.getRunDetails({ runId }))
      expect(yield* codeOf(() => clients.grpc.getRunDetails({ runId: missing }))).toBe(Code.NotFound)
      expect(yield* codeOf(() => clients.grpcWeb.getRunDetails({}))).toBe(Code.InvalidArgument)
      yield* call(() => clients.grpcWeb.getRunDetails({ runId }))

      const scraped = yield* scrape(app.metricsUrl)
      expect(scraped.contentType).toMatch(/^text\/plain; version=0\.0\.4/)
      const changed = delta(before, scraped.samples)
      const count = "rpc_server_duration_milliseconds_count"
      // Connect labels errors only; gRPC and gRPC-Web always carry the numeric status.
      expect(changed(count, rpc("connect_rpc", runService, "CreateRun"))).toBe(1)
      expect(changed(count, rpc("connect_rpc", runService, "GetRunDetails", { rpc_connect_rpc_error_code: "invalid_argument" })))
        .toBe(1)
      expect(changed(count, rpc("connect_rpc", runService, "GetRunDetails", { rpc_connect_rpc_error_code: "not_found" })))
        .toBe(1)
      expect(changed(count, rpc("grpc", runService, "GetRunDetails", { rpc_grpc_status_code: "0" }))).toBe(1)
      expect(changed(count, rpc("grpc", runService, "GetRunDetails", { rpc_grpc_status_code: "5" }))).toBe(1)
      expect(changed(count, rpc("grpc_web", runService, "GetRunDetails", { rpc_grpc_status_code: "3" }))).toBe(1)
      expect(changed(count, rpc("grpc_web", runService, "GetRunDetails", { rpc_grpc_status_code: "0" }))).toBe(1)

      // The histogram's buckets are cumulative, end at +Inf with the count, and the sum is a duration.
      const createRun = rpc("connect_rpc", runService, "CreateRun")
      const inf = valueOf(scraped.samples, "rpc_server_duration_milliseconds_bucket", { ...createRun, le: "+Inf" })
      expect(inf).toBe(valueOf(scraped.samples, count, createRun))
      const buckets = scraped.samples.filter((s) =>
        s.name === "rpc_server_duration_milliseconds_bucket" && s.labels["rpc_method"] === "CreateRun" &&
        s.labels["rpc_system"] === "connect_rpc"
      ).map((s) => s.value)
      expect(buckets).toEqual([...buckets].sort((a, b) => a - b))
      expect(changed("rpc_server_duration_milliseconds_sum", createRun)).toBeGreaterThan(0)

      // What CreateRun did: a change for the watchers, a transaction, an enqueue delivered by the outbox worker.
      expect(changed("runs_changes_published_total")).toBe(1)
      expect(changed("runs_db_transaction_duration_seconds_count")).toBeGreaterThanOrEqual(1)
      yield* scrapeUntil(app.metricsUrl, (samples) =>
        delta(before, samples)("runs_dispatch_total", { kind: "enqueue", outcome: "delivered" }) === 1 &&
        valueOf(samples, "runs_outbox_pending") === 0 && valueOf(samples, "runs_outbox_oldest_age_seconds") === 0)

      // The process's own.
      for (const name of ["process_resident_memory_bytes", "nodejs_eventloop_lag_seconds", "nodejs_heap_size_used_bytes"]) {
        expect(valueOf(scraped.samples, name), name).toBeGreaterThan(0)
      }
      expect(scraped.samples.some((s) => s.name === "nodejs_gc_duration_seconds_count")).toBe(true)
    })), 30_000)

  it.live("counts InternalRunService's in-band failures by status, and the events it stored", () =>
    Effect.scoped(Effect.gen(function*() {
      const app = yield* startApp()
      const clients = clientsAt(app.url)
      const run = { project: "flytesnacks", domain: "development", name: "metrics-exec" }
      yield* call(() => clients.connect.createRun(createNamed(run.name)))
      const before = (yield* scrape(app.metricsUrl)).samples

      const { records, reports } = scriptedRun(run)
      const steps = [...records, ...reports]
      const codes = yield* call(() => runSteps(clients.internal, steps))
      expect(codes.every((code) => code === 0)).toBe(true)
      const stored = steps.reduce((sum, step) => sum + (step.kind === "events" ? step.events.length : 0), 0)
      // Answered OK with an error in the response: an event without an id.
      const answer = yield* call(() => clients.internal.recordActionEvents({ events: [{}] }))
      expect(answer.status?.code).toBe(Code.InvalidArgument)

      const changed = delta(before, (yield* scrape(app.metricsUrl)).samples)
      expect(changed("runs_events_ingested_total")).toBe(stored)
      const events = rpc("connect_rpc", internalService, "RecordActionEvents")
      expect(changed("rpc_server_duration_milliseconds_count", events)).toBe(steps.filter((s) => s.kind === "events").length)
      expect(changed("rpc_server_duration_milliseconds_count", { ...events, runs_inband_status_code: "invalid_argument" }))
        .toBe(1)
      expect(changed("runs_inband_errors_total", { rpc_method: "RecordActionEvents", runs_inband_status_code: "invalid_argument" }))
        .toBe(1)
    })), 30_000)

  it.live("counts watch streams open, and why they ended: cancelled, error, shutdown", () =>
    Effect.scoped(Effect.gen(function*() {
      const app = yield* startApp()
      const clients = clientsAt(app.url)
      const runId = { org: "", project: "flytesnacks", domain: "development", name: "metrics-watch" }
      yield* call(() => clients.connect.createRun(createNamed(runId.name)))
      const before = (yield* scrape(app.metricsUrl)).samples
      const open = (method: string) => valueOf(after, "runs_watch_streams", { rpc_method: method })
      let after = before

      // A stream the client cancels.
      yield* Effect.scoped(Effect.gen(function*() {
        const reader = yield* openStream((signal) => clients.watch.watchRunDetails({ runId }, { signal }))
        yield* reader.next
        after = (yield* scrape(app.metricsUrl)).samples
        expect(open("WatchRunDetails")).toBe(valueOf(before, "runs_watch_streams", { rpc_method: "WatchRunDetails" }) + 1)
      }))
      after = yield* scrapeUntil(app.metricsUrl, (samples) =>
        delta(before, samples)("runs_watch_ended_total", { rpc_method: "WatchRunDetails", reason: "cancelled" }) === 1)
      expect(delta(before, after)("runs_watch_streams", { rpc_method: "WatchRunDetails" })).toBe(0)
      expect(delta(before, after)("rpc_server_duration_milliseconds_count",
        rpc("connect_rpc", runService, "WatchRunDetails", { rpc_connect_rpc_error_code: "canceled" }))).toBe(1)

      // A stream that fails when it opens (an invalid request) ends with an error.
      const invalid = yield* Effect.scoped(Effect.flatMap(
        openStream((signal) => clients.watch.watchActionDetails({}, { signal })),
        (reader) => reader.failure
      ))
      expect(invalid.code).toBe(Code.InvalidArgument)
      after = yield* scrapeUntil(app.metricsUrl, (samples) =>
        delta(before, samples)("runs_watch_ended_total", { rpc_method: "WatchActionDetails", reason: "error" }) === 1)

      // A stream still open when the service stops ends with Unavailable: shutdown.
      const reader = yield* openStream((signal) => clients.watch.watchActions({ runId }, { signal }))
      yield* reader.next
      yield* app.stop
      expect((yield* reader.failure).code).toBe(Code.Unavailable)
      // The server is gone: read the process's metrics directly (the exposition's own text).
      const final = parseExposition(prometheusText(Metric.unsafeSnapshot()))
      expect(delta(before, final)("runs_watch_ended_total", { rpc_method: "WatchActions", reason: "shutdown" })).toBe(1)
      expect(delta(before, final)("runs_watch_streams", { rpc_method: "WatchActions" })).toBe(0)
      expect(delta(before, final)("rpc_server_duration_milliseconds_count",
        rpc("connect_rpc", runService, "WatchActions", { rpc_connect_rpc_error_code: "unavailable" }))).toBe(1)
    })), 30_000)

  it.live("runs.metrics.port serves /metrics on a port of its own; runs.metrics.enabled=false serves none", () =>
    Effect.scoped(Effect.gen(function*() {
      const metricsPort = yield* freePort
      const alone = yield* startApp({ RUNS_METRICS_PORT: String(metricsPort) })
      const own = yield* scrape(`http://127.0.0.1:${metricsPort}/metrics`)
      expect(valueOf(own.samples, "process_resident_memory_bytes")).toBeGreaterThan(0)
      expect((yield* call(() => fetch(alone.metricsUrl))).status).toBe(404)

      const off = yield* startApp({ RUNS_METRICS_ENABLED: "false" })
      expect((yield* call(() => fetch(off.metricsUrl))).status).toBe(404)
    })), 30_000)
})
