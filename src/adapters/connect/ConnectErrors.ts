import { Code, ConnectError } from "@connectrpc/connect"
import { Cause, Effect, Option } from "effect"
import { clip } from "../../domain/Errors.js"

/** A feature this service does not serve (yet). */
export class NotServed extends Error {
  readonly _tag = "NotServed"
}

/** The code each known error tag is answered with (SPEC 10); any other failure or defect is `Internal`. */
const codeByTag: Readonly<Record<string, Code>> = {
  InvalidRequest: Code.InvalidArgument,
  InvalidArgument: Code.InvalidArgument,
  NotFound: Code.NotFound,
  AlreadyExists: Code.AlreadyExists,
  UnreadableBlob: Code.FailedPrecondition,
  FailedPrecondition: Code.FailedPrecondition,
  ResourceExhausted: Code.ResourceExhausted,
  DatabaseUnavailable: Code.Unavailable,
  StoreUnavailable: Code.Unavailable,
  NotReady: Code.Unavailable,
  ShuttingDown: Code.Unavailable,
  NotServed: Code.Unimplemented,
  BlobNotFound: Code.NotFound,
  Unimplemented: Code.Unimplemented
}

const tagOf = (error: unknown): string | undefined =>
  typeof error === "object" && error !== null && "_tag" in error && typeof error._tag === "string"
    ? error._tag
    : undefined

const messageOf = (error: unknown): string => {
  if (typeof error !== "object" || error === null) return String(error)
  if ("message" in error && typeof error.message === "string" && error.message !== "") return error.message
  if ("reason" in error && typeof error.reason === "string") return error.reason
  return tagOf(error) ?? "error"
}

// A message can quote what the client sent (a filter value, a name); neither answer nor log grows with it.
const maxMessage = 1_000
const maxLogged = 4_000

// What a wrapped error wraps (a SqlError's driver error: its message and code are what an operator needs).
const causedBy = (cause: Cause.Cause<unknown>): string => {
  const inner = [...Cause.failures(cause), ...Cause.defects(cause)].flatMap((error) => {
    const wrapped = typeof error === "object" && error !== null && "cause" in error ? error.cause : undefined
    if (typeof wrapped !== "object" || wrapped === null || !("message" in wrapped)) return []
    const code = "code" in wrapped && typeof wrapped.code === "string" ? ` (${wrapped.code})` : ""
    return [`${String(wrapped.message)}${code}`]
  })
  return inner.length === 0 ? "" : `caused by: ${inner.join("; ")}\n`
}

export interface MappedFailure {
  readonly error: ConnectError
  /** What the log gets: the full cause for an `Internal`, the message otherwise. */
  readonly logDetail: string
}

/**
 * Maps a whole failed `Cause` to the one error a client sees. Expected failures keep their message; a
 * defect, an unknown failure or an interruption without a reason never shows its text to the client.
 */
export const toConnectError = (cause: Cause.Cause<unknown>, requestId: string): MappedFailure => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    if (error instanceof ConnectError) {
      if (error.rawMessage.length <= maxMessage) return { error, logDetail: error.rawMessage }
      return { error: new ConnectError(clip(error.rawMessage, maxMessage), error.code), logDetail: clip(error.rawMessage, maxLogged) }
    }
    const code = codeByTag[tagOf(error) ?? ""]
    if (code !== undefined) {
      const message = messageOf(error)
      return { error: new ConnectError(clip(message, maxMessage), code), logDetail: clip(message, maxLogged) }
    }
  } else if (Cause.isInterruptedOnly(cause)) {
    return { error: new ConnectError("the request was cancelled", Code.Canceled), logDetail: "interrupted" }
  }
  return {
    error: new ConnectError(`internal error (request id ${requestId})`, Code.Internal),
    logDetail: clip(`${causedBy(cause)}${Cause.pretty(cause)}`, maxLogged)
  }
}

/** A failure as an in-band `google.rpc.Status` (InternalRunService answers every failure this way). */
export const toStatus = (failure: MappedFailure): { readonly code: number; readonly message: string } => ({
  code: failure.error.code,
  message: failure.error.rawMessage
})

/** Logs a failed request once, with its procedure, code and cause. */
export const logFailure = (procedure: string, requestId: string, mapped: MappedFailure): Effect.Effect<void> => {
  const log = mapped.error.code === Code.Internal
    ? Effect.logError("request failed")
    : mapped.error.code === Code.Canceled
    ? Effect.logDebug("request cancelled")
    : Effect.logInfo("request failed")
  return log.pipe(
    Effect.annotateLogs({
      procedure,
      code: Code[mapped.error.code],
      requestId,
      cause: mapped.logDetail
    })
  )
}

const shutdownMark = Symbol("the server is shutting down")

/** What a stream still open at shutdown ends with; marked so the metrics tell it from other `Unavailable`s. */
export const shutdownError = (): ConnectError =>
  new ConnectError("the server is shutting down", Code.Unavailable, undefined, undefined, shutdownMark)

export const isShutdown = (error: unknown): boolean => error instanceof ConnectError && error.cause === shutdownMark
