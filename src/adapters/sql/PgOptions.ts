import { ConfigError, Effect, Either } from "effect"
import { readFileSync } from "node:fs"
import type { ConnectionOptions } from "node:tls"

/** The node-postgres connection settings that `database.postgres.extraOptions` can change. */
export interface PgExtraOptions {
  readonly ssl: false | ConnectionOptions
  readonly application_name: string
  readonly connectionTimeoutMillis: number
  /** Sent at connect time; always sets the session time zone to UTC first. */
  readonly options: string
  readonly statement_timeout?: number
}

const path = ["database", "postgres", "extraOptions"]
const invalid = (message: string) => ConfigError.InvalidData(path, message)

const supported = [
  "sslmode",
  "sslrootcert",
  "sslcert",
  "sslkey",
  "application_name",
  "connect_timeout",
  "options",
  "search_path",
  "statement_timeout"
]

/** libpq-style `key=value` pairs separated by spaces; a value may be single-quoted. */
const pairs = (text: string): Either.Either<ReadonlyMap<string, string>, string> => {
  const pair = /\s*([A-Za-z_]+)\s*=\s*(?:'((?:[^'\\]|\\.)*)'|(\S*))\s*/y
  const found = new Map<string, string>()
  const trimmed = text.trim()
  while (pair.lastIndex < trimmed.length) {
    const start = pair.lastIndex
    const match = pair.exec(trimmed)
    if (match === null) return Either.left(`cannot read "${trimmed.slice(start)}"`)
    const [, key = "", quoted, plain = ""] = match
    if (!supported.includes(key)) return Either.left(`unknown key "${key}" (supported: ${supported.join(", ")})`)
    found.set(key, quoted === undefined ? plain : quoted.replace(/\\(.)/g, (_, c: string) => c))
  }
  return Either.right(found)
}

const readPem = (file: string | undefined) =>
  Effect.try({
    try: () => (file === undefined ? undefined : readFileSync(file, "utf8")),
    catch: () => invalid(`cannot read the file "${file}"`)
  })

// node-postgres cannot fall back from TLS to plain text, so `prefer` (libpq's default) and `allow` mean no TLS.
const tls = (values: ReadonlyMap<string, string>) =>
  Effect.gen(function*() {
    const mode = values.get("sslmode") ?? "disable"
    if (mode === "disable" || mode === "allow" || mode === "prefer") return false as const
    if (mode !== "require" && mode !== "verify-ca" && mode !== "verify-full") {
      return yield* Effect.fail(invalid(`unknown sslmode "${mode}"`))
    }
    const [ca, cert, key] = yield* Effect.all([
      readPem(values.get("sslrootcert")),
      readPem(values.get("sslcert")),
      readPem(values.get("sslkey"))
    ])
    const options: ConnectionOptions = {
      rejectUnauthorized: mode !== "require",
      ...(ca === undefined ? {} : { ca }),
      ...(cert === undefined ? {} : { cert }),
      ...(key === undefined ? {} : { key })
    }
    return mode === "verify-ca" ? { ...options, checkServerIdentity: () => undefined } : options
  })

const number = (values: ReadonlyMap<string, string>, key: string) => {
  const text = values.get(key)
  if (text === undefined) return Effect.succeed(undefined)
  const value = Number(text)
  return Number.isInteger(value) && value >= 0
    ? Effect.succeed(value)
    : Effect.fail(invalid(`${key} must be a whole number, got "${text}"`))
}

export const parseExtraOptions = (text: string): Effect.Effect<PgExtraOptions, ConfigError.ConfigError> =>
  Effect.gen(function*() {
    const values = yield* Either.mapLeft(pairs(text), (message) => invalid(message))
    const ssl = yield* tls(values)
    const connectTimeout = yield* number(values, "connect_timeout")
    const statementTimeout = yield* number(values, "statement_timeout")
    const searchPath = values.get("search_path")
    const options = [
      "-c TimeZone=UTC",
      ...(searchPath === undefined ? [] : [`-c search_path=${searchPath}`]),
      values.get("options") ?? ""
    ].filter((option) => option !== "").join(" ")
    return {
      ssl,
      application_name: values.get("application_name") ?? "flyte-runs-service",
      connectionTimeoutMillis: (connectTimeout ?? 10) * 1000,
      options,
      ...(statementTimeout === undefined ? {} : { statement_timeout: statementTimeout })
    }
  })
