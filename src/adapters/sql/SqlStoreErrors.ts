import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import { StoreUnavailable } from "../../ports/RunStore.js"

const connectionCodes = new Set([
  "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN", "EPIPE",
  // SQLite reports a lock still held after the busy timeout like this.
  "SQLITE_BUSY", "SQLITE_BUSY_SNAPSHOT", "SQLITE_BUSY_RECOVERY", "SQLITE_BUSY_TIMEOUT",
  // Postgres: shutting down, restarting, starting up, too many connections.
  "57P01", "57P02", "57P03", "53300"
])

const connectionMessages = [
  /^Failed to acquire connection/,
  /^Connection error/,
  /Connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /Client has encountered a connection error/i,
  /connection is closed/i
]

const codeOf = (cause: unknown): string | undefined =>
  typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string"
    ? cause.code
    : undefined

const messageOf = (cause: unknown): string => (cause instanceof Error ? cause.message : "")

/** The database could not be reached or is locked, as opposed to a statement that is wrong. */
export const isUnavailable = (error: SqlError): boolean => {
  const code = codeOf(error.cause)
  if (code !== undefined && (connectionCodes.has(code) || code.startsWith("08"))) return true
  const texts = [error.message, messageOf(error.cause)]
  return connectionMessages.some((pattern) => texts.some((text) => pattern.test(text)))
}

/** Postgres chose this transaction to end a deadlock, or could not serialise it: running it again may succeed. */
export const isConflict = (error: unknown): boolean =>
  typeof error === "object" && error !== null && "_tag" in error && error._tag === "SqlError" &&
  "cause" in error && ["40P01", "40001"].includes(codeOf(error.cause) ?? "")

/** The library's message and the driver's (e.g. `connect ECONNREFUSED 127.0.0.1:5432`); never SQL text. */
const reason = (error: SqlError): string => {
  const detail = messageOf(error.cause) || (codeOf(error.cause) ?? "")
  return (detail === "" ? error.message : `${error.message}: ${detail}`).slice(0, 200)
}

/** `SqlError` at the port's edge: `StoreUnavailable` when the database is out of reach, else a defect. */
export const refail = <A, E, R>(
  effect: Effect.Effect<A, E | SqlError, R>
): Effect.Effect<A, Exclude<E, SqlError> | StoreUnavailable, R> =>
  Effect.catchIf(
    effect,
    (error): error is SqlError => typeof error === "object" && error !== null && "_tag" in error && error._tag === "SqlError",
    (error) => (isUnavailable(error) ? Effect.fail(new StoreUnavailable({ reason: reason(error) })) : Effect.die(error))
  )
