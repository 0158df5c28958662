import { Data } from "effect"

/** A field, token, filter, sort or limit that cannot be used; the message names it. */
export class InvalidArgument extends Data.TaggedError("InvalidArgument")<{ readonly message: string }> {}

/** A run, action, task or attempt that does not exist (yet). */
export class NotFound extends Data.TaggedError("NotFound")<{ readonly message: string }> {}

/** A run name taken by a different request. */
export class AlreadyExists extends Data.TaggedError("AlreadyExists")<{ readonly message: string }> {}

/** A feature this service does not serve (triggers). */
export class Unimplemented extends Data.TaggedError("Unimplemented")<{ readonly message: string }> {}
