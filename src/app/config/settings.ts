import * as path from "node:path"
import { Config, ConfigError, Duration, Either, LogLevel, Option, Redacted } from "effect"
import type { AppConfig, DatabaseSettings } from "../AppConfig.js"
import { authConfig, securityKeys, securityListKeys, tlsConfig } from "./security.js"
import * as V from "./values.js"

/** Every key the service reads; anything else in the file is reported and ignored. */
export const knownKeys = [
  "runs.server.host",
  "runs.server.port",
  "runs.server.corsOrigins",
  "runs.server.maxRequestBytes",
  "runs.server.compressMinBytes",
  "runs.server.shutdownTimeout",
  "runs.server.headerTimeout",
  "runs.server.idleTimeout",
  "runs.watchBufferSize",
  "runs.watchMaxPending",
  "runs.watchStallTimeout",
  "runs.storagePrefix",
  "runs.dispatcher",
  "runs.actionsServiceUrl",
  "runs.dispatchMaxAge",
  "runs.trustForwardedIdentity",
  "runs.identityHeader",
  "runs.retention.maxAge",
  "runs.retention.interval",
  "runs.retention.batchSize",
  "runs.metrics.enabled",
  "runs.metrics.port",
  "runs.domains",
  "runs.clusterEndpoint",
  "database.sqlite.file",
  "database.postgres.host",
  "database.postgres.port",
  "database.postgres.dbname",
  "database.postgres.username",
  "database.postgres.password",
  "database.postgres.extraOptions",
  "database.maxIdleConnections",
  "database.maxOpenConnections",
  "database.connMaxLifeTime",
  "logger.level",
  "logger.show-source",
  "logger.format",
  ...securityKeys
] as const

export type Key = typeof knownKeys[number]

/** Keys whose YAML value may be a list rather than one scalar. */
export const listKeys: ReadonlySet<string> = new Set<Key>(["runs.server.corsOrigins", "runs.domains", ...securityListKeys])

const at = <A>(key: Key, config: Config.Config<A>): Config.Config<A> =>
  key.split(".").reduceRight((inner, name) => Config.nested(inner, name), config)

const validated = <A, B>(config: Config.Config<A>, parse: (value: A) => Either.Either<B, string>) =>
  Config.mapOrFail(config, (value) => Either.mapLeft(parse(value), (message) => ConfigError.InvalidData([], message)))

// Every value is read as a string and parsed afterwards: a primitive that fails inside the environment
// provider would make `ConfigProvider.orElse` fall back to the file's value silently.
const setting = <A>(key: Key, parse: V.Parse<A>, fallback: A): Config.Config<A> =>
  Config.withDefault(at(key, validated(Config.string(), parse)), fallback)

const corsOrigins: Config.Config<ReadonlyArray<string>> = Config.withDefault(
  at(
    "runs.server.corsOrigins",
    validated(
      Config.orElse(Config.map(Config.string(), (text) => [text]), () => Config.array(Config.string())),
      V.origins
    )
  ),
  []
)

const domains: Config.Config<ReadonlyArray<string>> = Config.withDefault(
  at(
    "runs.domains",
    validated(Config.orElse(Config.map(Config.string(), (text) => [text]), () => Config.array(Config.string())), V.domains)
  ),
  ["development", "staging", "production"]
)

const pool = Config.all({
  maxIdleConnections: setting("database.maxIdleConnections", V.count(0), 10),
  maxOpenConnections: setting("database.maxOpenConnections", V.count(1), 100),
  connMaxLifeTime: setting("database.connMaxLifeTime", V.duration({ allowZero: true }), Duration.hours(1))
})

const postgres: Config.Config<DatabaseSettings> = Config.map(
  Config.all({
    host: setting("database.postgres.host", V.nonEmpty, "localhost"),
    port: setting("database.postgres.port", V.port, 5432),
    dbname: setting("database.postgres.dbname", V.nonEmpty, "flyte_runs"),
    username: setting("database.postgres.username", V.nonEmpty, "postgres"),
    password: Config.withDefault(Config.redacted(at("database.postgres.password", Config.string())), Redacted.make("")),
    extraOptions: setting("database.postgres.extraOptions", V.pgOptions, ""),
    pool
  }),
  ({ pool, ...settings }) => ({ kind: "postgres" as const, ...settings, ...pool })
)

// The pool settings are validated with SQLite too, so a typo fails the same way whichever database is chosen.
const sqlite: Config.Config<DatabaseSettings> = Config.map(
  Config.all({ file: setting("database.sqlite.file", V.nonEmpty, "./runs.db"), pool }),
  ({ file }) => ({ kind: "sqlite" as const, file })
)

/**
 * Responses smaller than this go out uncompressed even to clients that accept gzip: compressing a few KB
 * costs more CPU than it saves on the wire, and a watch update would be compressed once per watcher.
 */
export const defaultCompressMinBytes = 16 * 1024

export const appConfig = (database: "sqlite" | "postgres", cwd: string): Config.Config<AppConfig> =>
  Config.all({
    server: Config.all({
      host: setting("runs.server.host", V.nonEmpty, "0.0.0.0"),
      port: setting("runs.server.port", V.port, 8090),
      corsOrigins: corsOrigins,
      maxRequestBytes: setting("runs.server.maxRequestBytes", V.count(1), 16 * 1024 * 1024),
      compressMinBytes: setting("runs.server.compressMinBytes", V.count(0), defaultCompressMinBytes),
      shutdownTimeout: setting("runs.server.shutdownTimeout", V.duration({ allowZero: true }), Duration.seconds(10)),
      headerTimeout: setting("runs.server.headerTimeout", V.duration({ allowZero: false }), Duration.seconds(10)),
      idleTimeout: setting("runs.server.idleTimeout", V.duration({ allowZero: false }), Duration.minutes(2)),
      tls: tlsConfig(cwd)
    }),
    watchBufferSize: setting("runs.watchBufferSize", V.count(1), 100),
    watchMaxPending: setting("runs.watchMaxPending", V.count(1), 100_000),
    watchStallTimeout: setting("runs.watchStallTimeout", V.duration({ allowZero: false }), Duration.seconds(30)),
    storagePrefix: setting("runs.storagePrefix", V.storagePrefix, `file://${path.resolve(cwd, "data")}`),
    dispatcher: setting("runs.dispatcher", V.oneOf("none", "actions"), "none"),
    actionsServiceUrl: setting("runs.actionsServiceUrl", V.httpUrl, "http://localhost:8090"),
    dispatchMaxAge: setting("runs.dispatchMaxAge", V.duration({ allowZero: false }), Duration.hours(24)),
    trustForwardedIdentity: setting("runs.trustForwardedIdentity", V.boolean, false),
    identityHeader: setting("runs.identityHeader", V.headerName, "X-Forwarded-User"),
    auth: authConfig(cwd),
    retention: Config.all({
      // Off unless set; 0 turns it off too.
      maxAge: Config.map(
        setting("runs.retention.maxAge", V.duration({ allowZero: true }), Duration.zero),
        (age) => (Duration.toMillis(age) > 0 ? age : undefined)
      ),
      interval: setting("runs.retention.interval", V.duration({ allowZero: false }), Duration.hours(1)),
      batchSize: setting("runs.retention.batchSize", V.count(1), 20)
    }),
    domains,
    clusterEndpoint: setting("runs.clusterEndpoint", V.baseUrl, ""),
    database: database === "postgres" ? postgres : sqlite,
    metrics: Config.all({
      enabled: setting("runs.metrics.enabled", V.boolean, true),
      port: Config.map(Config.option(at("runs.metrics.port", validated(Config.string(), V.port))), Option.getOrUndefined)
    }),
    logger: Config.all({
      level: setting("logger.level", V.logLevel, LogLevel.Info),
      showSource: setting("logger.show-source", V.boolean, false),
      format: setting("logger.format", V.oneOf("text", "json"), "text")
    })
  })
