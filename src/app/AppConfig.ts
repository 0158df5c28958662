import type { Duration, LogLevel, Redacted } from "effect"

export interface SqliteSettings {
  readonly kind: "sqlite"
  readonly file: string
}

export interface PostgresSettings {
  readonly kind: "postgres"
  readonly host: string
  readonly port: number
  readonly dbname: string
  readonly username: string
  readonly password: Redacted.Redacted<string>
  /** libpq-style `key=value` pairs separated by spaces, e.g. `sslmode=disable` */
  readonly extraOptions: string
  readonly maxIdleConnections: number
  readonly maxOpenConnections: number
  readonly connMaxLifeTime: Duration.Duration
}

export type DatabaseSettings = SqliteSettings | PostgresSettings

/** The whole configuration of the service, after defaults, the YAML file and environment overrides. */
export interface AppConfig {
  readonly server: {
    readonly host: string
    readonly port: number
    readonly corsOrigins: ReadonlyArray<string>
    readonly maxRequestBytes: number
    readonly shutdownTimeout: Duration.Duration
  }
  readonly watchBufferSize: number
  readonly storagePrefix: string
  readonly dispatcher: "none" | "actions"
  readonly actionsServiceUrl: string
  readonly dispatchMaxAge: Duration.Duration
  readonly trustForwardedIdentity: boolean
  readonly identityHeader: string
  readonly database: DatabaseSettings
  readonly logger: {
    readonly level: LogLevel.LogLevel
    readonly showSource: boolean
  }
}
