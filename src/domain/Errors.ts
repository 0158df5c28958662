import { Data } from "effect"

/** A field, token, filter, sort or limit that cannot be used; the message names it. */
export class InvalidArgument extends Data.TaggedError("InvalidArgument")<{ readonly message: string }> {}

/** A run, action, task or attempt that does not exist (yet). */
export class NotFound extends Data.TaggedError("NotFound")<{ readonly message: string }> {}

/** A run name taken by a different request. */
export class AlreadyExists extends Data.TaggedError("AlreadyExists")<{ readonly message: string }> {}

/** A feature this service does not serve (triggers). */
export class Unimplemented extends Data.TaggedError("Unimplemented")<{ readonly message: string }> {}

/**
 * Client text as an error message or log line may repeat it: at most `max` characters, the rest counted.
 * A request may carry megabytes in one field; echoing it whole would make the answer and the log that large.
 */
export const clip = (text: string, max: number): string =>
  text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`

/** Client text quoted for an error message, clipped to 100 characters. */
export const quoted = (text: string): string => JSON.stringify(clip(text, 100))
