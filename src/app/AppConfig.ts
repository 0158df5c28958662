import type { Duration, LogLevel } from "effect"
import type { PostgresOptions, SqliteOptions } from "../adapters/sql/SqlClients.js"

export interface SqliteSettings extends SqliteOptions {
  readonly kind: "sqlite"
}

/** `extraOptions` holds libpq-style `key=value` pairs separated by spaces, e.g. `sslmode=disable`. */
export interface PostgresSettings extends PostgresOptions {
  readonly kind: "postgres"
}

export type DatabaseSettings = SqliteSettings | PostgresSettings

/** The whole configuration of the service, after defaults, the YAML file and environment overrides. */
export interface AppConfig {
  readonly server: {
    readonly host: string
    readonly port: number
    readonly corsOrigins: ReadonlyArray<string>
    readonly maxRequestBytes: number
    /** Smallest response compressed for a client that accepts compression. */
    readonly compressMinBytes: number
    readonly shutdownTimeout: Duration.Duration
  }
  readonly watchBufferSize: number
  readonly watchMaxPending: number
  readonly watchStallTimeout: Duration.Duration
  readonly storagePrefix: string
  readonly dispatcher: "none" | "actions"
  readonly actionsServiceUrl: string
  readonly dispatchMaxAge: Duration.Duration
  readonly trustForwardedIdentity: boolean
  readonly identityHeader: string
  /** The domains of every project that names none of its own. */
  readonly domains: ReadonlyArray<string>
  /** What SelectCluster answers; empty: the URL the caller reached the service at. */
  readonly clusterEndpoint: string
  readonly database: DatabaseSettings
  readonly logger: {
    readonly level: LogLevel.LogLevel
    readonly showSource: boolean
  }
}
