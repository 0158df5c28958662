import type { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { type ConfigError, Effect, Layer } from "effect"
import * as SqlDatabaseHealth from "../adapters/sql/SqlDatabaseHealth.js"
import { parseExtraOptions } from "../adapters/sql/PgOptions.js"
import { layerPostgres, layerSqlite, pgConnection, type PostgresOptions } from "../adapters/sql/SqlClients.js"
import { runMigrations } from "../adapters/sql/SqlMigrations.js"
import { backfillEventFacts } from "../adapters/sql/SqlEventBackfill.js"
import * as ProtoEventFacts from "../adapters/connect/ProtoEventFacts.js"
import * as BearerAuthenticator from "../adapters/auth/BearerAuthenticator.js"
import * as FileBlobStore from "../adapters/blob/FileBlobStore.js"
import * as ProtoPayloads from "../adapters/connect/ProtoPayloads.js"
import * as ActionsDispatcher from "../adapters/dispatch/ActionsDispatcher.js"
import * as LoggingDispatcher from "../adapters/dispatch/LoggingDispatcher.js"
import * as OutboxWorker from "../adapters/dispatch/OutboxWorker.js"
import * as MemoryChangeFeed from "../adapters/memory/MemoryChangeFeed.js"
import * as PgNotifyChangeFeed from "../adapters/pg-notify/PgNotifyChangeFeed.js"
import * as SqlOutbox from "../adapters/sql/SqlOutbox.js"
import * as SqlRunStore from "../adapters/sql/SqlRunStore.js"
import * as WatchHubsLive from "../adapters/watch/WatchHubs.js"
import * as IngestionLive from "../domain/Ingestion.js"
import * as RetentionLive from "../domain/Retention.js"
import * as RunsLive from "../domain/Runs.js"
import { RunsSettings } from "../domain/RunsSettings.js"
import { WatchSettings } from "../domain/WatchRules.js"
import * as WatchesLive from "../domain/Watches.js"
import type { AppConfig } from "./AppConfig.js"
import { ClusterEndpoint } from "../adapters/connect/ClusterServiceHandlers.js"
import * as ProjectsLive from "../domain/Projects.js"
import * as TasksLive from "../domain/Tasks.js"
import { layerReadiness } from "./ReadinessLive.js"
import { layerMetrics } from "./MetricsLive.js"
import { layerServer } from "./ServerLive.js"

const describeDatabase = (database: AppConfig["database"]) =>
  database.kind === "sqlite"
    ? `sqlite ${database.file}`
    : `postgres ${database.username}@${database.host}:${database.port}/${database.dbname}`

/** The Postgres change feed, listening with the service's own connection settings. */
const postgresChangeFeed = (settings: PostgresOptions) =>
  Layer.unwrapEffect(
    Effect.map(parseExtraOptions(settings.extraOptions), (extra) =>
      PgNotifyChangeFeed.layer({ connection: { ...pgConnection(settings), ...extra } }))
  ).pipe(Layer.provide(MemoryChangeFeed.layerLocal("not listening for changes yet")))

/**
 * The whole service for a configuration. SQLite is migrated before the server listens (a bad file stops
 * start-up); Postgres is migrated in the background, so the service starts while its database is down.
 */
export const appLayer = (config: AppConfig) => {
  const database: Layer.Layer<SqlClient.SqlClient, SqlError | ConfigError.ConfigError> = config.database.kind === "sqlite"
    ? layerSqlite({ file: config.database.file })
    : layerPostgres(config.database)
  // The events stored before their merge facts were kept get them before the service is ready.
  const prepare = Effect.zipRight(runMigrations, backfillEventFacts).pipe(Effect.provide(ProtoEventFacts.layer))
  const migrateFirst = config.database.kind === "sqlite"
    ? Layer.effectDiscard(prepare)
    : Layer.empty
  const readiness = layerReadiness(prepare).pipe(Layer.provide(SqlDatabaseHealth.layer))
  const announce = Layer.scopedDiscard(
    Effect.acquireRelease(
      Effect.logInfo(`database: ${describeDatabase(config.database)}`),
      () => Effect.logInfo("closing the database")
    )
  )
  // Watchers on every replica see every change only through Postgres; SQLite serves one process.
  const changeFeed = config.database.kind === "postgres"
    ? postgresChangeFeed(config.database)
    : MemoryChangeFeed.layer
  // One store for every user, built with the feed: on Postgres it sends change notices inside its transactions.
  // (Layers are shared by reference, so a second, bare SqlRunStore.layer would be built once, without them.)
  const store = SqlRunStore.layer.pipe(Layer.provideMerge(changeFeed))
  // One blob store (and so one writer thread) for the runs and the retention.
  const blobs = FileBlobStore.layer({ storagePrefix: config.storagePrefix })
  const runs = WatchesLive.layer.pipe(
    Layer.provideMerge(Layer.merge(RunsLive.layer, IngestionLive.layer)),
    Layer.provide(WatchHubsLive.layer),
    Layer.provide(store),
    Layer.provide(Layer.succeed(WatchSettings, {
      bufferSize: config.watchBufferSize,
      maxPending: config.watchMaxPending,
      stallTimeout: config.watchStallTimeout
    })),
    Layer.provide(blobs),
    Layer.provide(ProtoPayloads.layer),
    Layer.provide(Layer.succeed(RunsSettings, { storagePrefix: config.storagePrefix }))
  )
  // ProjectService, TaskService and ClusterService (issue #28), over the same store.
  const catalog = Layer.mergeAll(
    ProjectsLive.layer.pipe(Layer.provide(Layer.succeed(ProjectsLive.ProjectSettings, { domains: config.domains }))),
    TasksLive.layer,
    Layer.succeed(ClusterEndpoint, { configured: config.clusterEndpoint === "" ? undefined : config.clusterEndpoint })
  ).pipe(Layer.provide(store))
  const dispatch = OutboxWorker.layer({ maxAge: config.dispatchMaxAge }).pipe(
    Layer.provide(
      config.dispatcher === "actions"
        ? ActionsDispatcher.layer({ url: config.actionsServiceUrl, timeout: "10 seconds" })
        : LoggingDispatcher.layer
    ),
    Layer.provide(Layer.merge(store, SqlOutbox.layer))
  )
  const retention = RetentionLive.layerSchedule.pipe(
    Layer.provide(RetentionLive.layer),
    Layer.provide(Layer.mergeAll(
      store,
      blobs,
      Layer.succeed(RunsSettings, { storagePrefix: config.storagePrefix })
    )),
    Layer.provide(Layer.succeed(RetentionLive.RetentionSettings, config.retention))
  )
  return layerServer(config.server, { trust: config.trustForwardedIdentity, header: config.identityHeader }).pipe(
    Layer.provide(runs),
    Layer.provide(BearerAuthenticator.layer(config.auth)),
    Layer.provide(catalog),
    Layer.merge(dispatch),
    Layer.merge(retention),
    Layer.provide(readiness),
    Layer.provide(migrateFirst),
    Layer.provide(announce),
    Layer.provide(database),
    // Built first and provided to every layer: those that can read a gauge register it when the metrics are on.
    Layer.provide(layerMetrics(config.metrics, config.server.host))
  )
}
