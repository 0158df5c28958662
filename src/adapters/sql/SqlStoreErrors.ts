import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Option } from "effect"
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
  /connection is closed/i,
  // The pool is closing (the service is shutting down).
  /Client was closed and is not queryable/i
]

const codeOf = (cause: unknown): string | undefined =>
  typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string"
    ? cause.code
    : undefined

const messageOf = (cause: unknown): string => (cause instanceof Error ? cause.message : "")

/** A driver error and, for an `AggregateError` (one per address tried when connecting), the errors inside it. */
const driverErrors = (cause: unknown): ReadonlyArray<unknown> =>
  cause instanceof AggregateError ? [cause, ...cause.errors] : [cause]

const isSqlError = (error: unknown): error is SqlError =>
  typeof error === "object" && error !== null && "_tag" in error && error._tag === "SqlError"

/** The database could not be reached or is locked, as opposed to a statement that is wrong. */
export const isUnavailable = (error: SqlError): boolean => {
  const causes = driverErrors(error.cause)
  const connectionCode = causes.some((cause) => {
    const code = codeOf(cause)
    return code !== undefined && (connectionCodes.has(code) || code.startsWith("08"))
  })
  if (connectionCode) return true
  const texts = [error.message, ...causes.map(messageOf)]
  return connectionMessages.some((pattern) => texts.some((text) => pattern.test(text)))
}

/** Postgres chose this transaction to end a deadlock, or could not serialise it: running it again may succeed. */
export const isConflict = (error: unknown): boolean =>
  isSqlError(error) && ["40P01", "40001"].includes(codeOf(error.cause) ?? "")

/** Conflicts in a row after which a transaction's conflict is its answer. */
const conflictRetries = 3

/**
 * A whole transaction run again when Postgres ended it to break a deadlock (or could not serialise it): the
 * other side has then gone on, so the next try usually passes. Only for a transaction that can run again from
 * its start with the same result, which every rolled-back transaction here can.
 */
export const retryingConflicts = <A, E, R>(transaction: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.retry(transaction, { times: conflictRetries, while: isConflict })

/** The library's message and the driver's (e.g. `connect ECONNREFUSED 127.0.0.1:5432`); never SQL text. */
const reason = (error: SqlError): string => {
  const detail = messageOf(error.cause) || (codeOf(error.cause) ?? "")
  return (detail === "" ? error.message : `${error.message}: ${detail}`).slice(0, 200)
}

const unavailable = (error: SqlError) => new StoreUnavailable({ reason: reason(error) })

/**
 * `SqlError` at the port's edge: `StoreUnavailable` when the database is out of reach, else a defect.
 *
 * @effect/sql's `withTransaction` turns a failed COMMIT or ROLLBACK into a defect (it wraps them in `orDie`),
 * and that is how a connection lost in the middle of a transaction arrives: the statement fails, then the
 * ROLLBACK on the dead connection fails too ("Client has encountered a connection error and is not queryable").
 * Such defects are the database being out of reach like any other, so they are `StoreUnavailable` as well;
 * every other defect stays one. A COMMIT lost this way may or may not have been applied: `Unavailable` says
 * "try again", and the writes are built so that the same request again is answered as the first one would
 * have been (the same run, the action kept, an event stored once).
 */
export const refail = <A, E, R>(
  effect: Effect.Effect<A, E | SqlError, R>
): Effect.Effect<A, Exclude<E, SqlError> | StoreUnavailable, R> =>
  Effect.catchIf(
    effect,
    (error): error is SqlError => isSqlError(error),
    (error) => (isUnavailable(error) ? Effect.fail(unavailable(error)) : Effect.die(error))
  ).pipe(
    Effect.catchSomeDefect((defect) =>
      isSqlError(defect) && isUnavailable(defect) ? Option.some(Effect.fail(unavailable(defect))) : Option.none()
    )
  )
