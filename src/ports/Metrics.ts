import { Context, Effect, Metric, MetricBoundaries, MetricLabel, type Scope } from "effect"

/*
 * What the service measures, as Effect metrics: code anywhere records with `Metric.increment(...)` and the like
 * (or `unsafeUpdate` outside Effect) and needs nothing in its context; the exporters (Prometheus at `/metrics`,
 * OpenTelemetry) read the same registry. The names are the Prometheus names an operator charts: the RPC
 * histogram follows the OpenTelemetry semantic conventions as the Go original's Connect interceptor exports them.
 */

/** OpenTelemetry's default bucket bounds for a histogram in milliseconds (what the Go original charts). */
const rpcBoundaries = MetricBoundaries.fromIterable([0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000])

/** Bounds for a database transaction in seconds: most commit within milliseconds, a stuck one takes seconds. */
const transactionBoundaries = MetricBoundaries.fromIterable([
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
])

/** Every RPC, observed when it ends (a stream too), by `rpc_system`, `rpc_service`, `rpc_method` and its outcome. */
export const rpcServerDuration = Metric.histogram(
  "rpc_server_duration_milliseconds",
  rpcBoundaries,
  "Duration of RPCs handled by the server, in milliseconds"
)

/** InternalRunService answers each failure in a successful response: counted here by that status's code. */
export const inBandErrors = Metric.counter("runs_inband_errors_total", {
  description: "InternalRunService requests answered OK with an error status in the response, by rpc_method and code",
  incremental: true
})

export const watchStreams = Metric.gauge("runs_watch_streams", {
  description: "Watch streams open now, by rpc_method"
})

export const watchEnded = Metric.counter("runs_watch_ended_total", {
  description: "Watch streams ended, by rpc_method and reason (completed, cancelled, fell_behind, shutdown, error)",
  incremental: true
})

export const changesPublished = Metric.counter("runs_changes_published_total", {
  description: "Committed changes handed to this process's watchers (on Postgres, other replicas' too)",
  incremental: true
})

export const outboxPending = Metric.gauge("runs_outbox_pending", {
  description: "Dispatch requests waiting in the outbox to be delivered"
})

export const outboxOldestAge = Metric.gauge("runs_outbox_oldest_age_seconds", {
  description: "Age of the oldest dispatch request waiting in the outbox (0 when none waits)"
})

export const dispatched = Metric.counter("runs_dispatch_total", {
  description: "Deliveries of outbox requests to the executor, by kind (enqueue, abort) and outcome " +
    "(delivered, retried, given_up)",
  incremental: true
})

export const dbPoolConnections = Metric.gauge("runs_db_pool_connections", {
  description: "Postgres pool connections, by state (idle, used, waiting: requests waiting for a connection)"
})

export const dbTransactionDuration = Metric.histogram(
  "runs_db_transaction_duration_seconds",
  transactionBoundaries,
  "Duration of the service's write transactions, in seconds, commit included"
)

export const eventsIngested = Metric.counter("runs_events_ingested_total", {
  description: "Action events stored from executors",
  incremental: true
})

export const retentionDeleted = Metric.counter("runs_retention_deleted_total", {
  description: "Runs deleted, whole, by retention (runs.retention.maxAge)",
  incremental: true
})

const labelCache = new Map<string, ReadonlyArray<MetricLabel.MetricLabel>>()

/**
 * The same array for the same labels: Effect finds a metric's series by the identity of its label array
 * (a `WeakMap`), so a cached array costs one lookup per update where a fresh one costs a registry search.
 */
export const labels = (pairs: ReadonlyArray<readonly [string, string]>): ReadonlyArray<MetricLabel.MetricLabel> => {
  let id = ""
  for (const [key, value] of pairs) id += `${key}\u0000${value}\u0001`
  let found = labelCache.get(id)
  if (found === undefined) {
    found = pairs.map(([key, value]) => MetricLabel.make(key, value))
    labelCache.set(id, found)
  }
  return found
}

/**
 * Gauges read only when someone looks (the outbox's backlog, the pool's connections): a layer that can read one
 * registers how, for its lifetime, and an exporter runs every reading before it reports. Optional: a layer
 * built without it reads nothing.
 */
export class MetricReadings extends Context.Tag("runs/MetricReadings")<MetricReadings, {
  /** Adds `read` until the scope closes. `read` never fails (it logs what it cannot read). */
  readonly register: (read: Effect.Effect<void>) => Effect.Effect<void, never, Scope.Scope>
  /** Runs every registered reading, one after the other. */
  readonly readAll: Effect.Effect<void>
}>() {}

/** Registers `read` with the service's readings when it has them (a layer built without them reads nothing). */
export const registerReading = (read: Effect.Effect<void>): Effect.Effect<void, never, Scope.Scope> =>
  Effect.flatMap(Effect.serviceOption(MetricReadings), (readings) =>
    readings._tag === "Some" ? readings.value.register(read) : Effect.void)
