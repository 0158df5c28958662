import type { Duration, LogLevel } from "effect"
import type { AuthSettings } from "../adapters/auth/BearerAuthenticator.js"
import type { TlsSettings } from "../adapters/http/Tls.js"
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
    /** How long a connection may take to send a request's headers (or an HTTP/2 preface) once it opens or goes idle. */
    readonly headerTimeout: Duration.Duration
    /** How long a connection with no request or stream open stays open. */
    readonly idleTimeout: Duration.Duration
    /** `runs.server.tls`: HTTPS instead of cleartext when set. */
    readonly tls?: TlsSettings | undefined
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
  /** `runs.auth`: who may call; off by default. */
  readonly auth: AuthSettings
  /** `runs.retention.*`: `maxAge` undefined means runs are kept for ever. */
  readonly retention: {
    readonly maxAge: Duration.Duration | undefined
    readonly interval: Duration.Duration
    readonly batchSize: number
  }
  /** The domains of every project that names none of its own. */
  readonly domains: ReadonlyArray<string>
  /** What SelectCluster answers; empty: the URL the caller reached the service at. */
  readonly clusterEndpoint: string
  readonly database: DatabaseSettings
  readonly metrics: {
    /** `runs.metrics.enabled`: RPCs observed and `/metrics` served. */
    readonly enabled: boolean
    /** `runs.metrics.port`: serve `/metrics` on this port of its own; undefined: on the service's port. */
    readonly port: number | undefined
  }
  readonly logger: {
    readonly level: LogLevel.LogLevel
    readonly showSource: boolean
    /** `text` (logfmt, the default) or `json` (one object per line). */
    readonly format: "text" | "json"
  }
}
