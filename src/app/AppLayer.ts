import type { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { type ConfigError, Effect, Layer } from "effect"
import * as SqlDatabaseHealth from "../adapters/sql/SqlDatabaseHealth.js"
import { layerPostgres, layerSqlite } from "../adapters/sql/SqlClients.js"
import { runMigrations } from "../adapters/sql/SqlMigrations.js"
import * as FileBlobStore from "../adapters/blob/FileBlobStore.js"
import * as ProtoPayloads from "../adapters/connect/ProtoPayloads.js"
import * as SqlRunStore from "../adapters/sql/SqlRunStore.js"
import * as IngestionLive from "../domain/Ingestion.js"
import * as RunsLive from "../domain/Runs.js"
import { RunsSettings } from "../domain/RunsSettings.js"
import type { AppConfig } from "./AppConfig.js"
import { layerReadiness } from "./ReadinessLive.js"
import { layerServer } from "./ServerLive.js"

const describeDatabase = (database: AppConfig["database"]) =>
  database.kind === "sqlite"
    ? `sqlite ${database.file}`
    : `postgres ${database.username}@${database.host}:${database.port}/${database.dbname}`

/**
 * The whole service for a configuration. SQLite is migrated before the server listens (a bad file stops
 * start-up); Postgres is migrated in the background, so the service starts while its database is down.
 */
export const appLayer = (config: AppConfig) => {
  const database: Layer.Layer<SqlClient.SqlClient, SqlError | ConfigError.ConfigError> = config.database.kind === "sqlite"
    ? layerSqlite({ file: config.database.file })
    : layerPostgres(config.database)
  const migrateFirst = config.database.kind === "sqlite"
    ? Layer.effectDiscard(runMigrations)
    : Layer.empty
  const readiness = layerReadiness(runMigrations).pipe(Layer.provide(SqlDatabaseHealth.layer))
  const announce = Layer.scopedDiscard(
    Effect.acquireRelease(
      Effect.logInfo(`database: ${describeDatabase(config.database)}`),
      () => Effect.logInfo("closing the database")
    )
  )
  const runs = Layer.merge(RunsLive.layer, IngestionLive.layer).pipe(
    Layer.provide(SqlRunStore.layer),
    Layer.provide(FileBlobStore.layer({ storagePrefix: config.storagePrefix })),
    Layer.provide(ProtoPayloads.layer),
    Layer.provide(Layer.succeed(RunsSettings, { storagePrefix: config.storagePrefix }))
  )
  return layerServer(config.server, { trust: config.trustForwardedIdentity, header: config.identityHeader }).pipe(
    Layer.provide(runs),
    Layer.provide(readiness),
    Layer.provide(migrateFirst),
    Layer.provide(announce),
    Layer.provide(database)
  )
}
