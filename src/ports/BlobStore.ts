import { Context, Data, type Effect } from "effect"

/** A URI of a scheme this server cannot read or write (answered `FailedPrecondition`). */
export class UnreadableBlob extends Data.TaggedError("UnreadableBlob")<{ readonly message: string }> {}

/** Nothing is stored at the URI. */
export class BlobNotFound extends Data.TaggedError("BlobNotFound")<{ readonly uri: string }> {}

/** Reading or writing failed for another reason (permissions, disk full...). */
export class BlobFailure extends Data.TaggedError("BlobFailure")<{ readonly uri: string; readonly reason: string }> {}

/** Inputs and outputs by URI: `file://` under `runs.storagePrefix`; other schemes are passed on, not read. */
export class BlobStore extends Context.Tag("runs/BlobStore")<BlobStore, {
  /** Writes (replacing) the bytes at `uri`, creating parent directories. */
  readonly write: (uri: string, bytes: Uint8Array) => Effect.Effect<void, UnreadableBlob | BlobFailure>
  readonly read: (uri: string) => Effect.Effect<Uint8Array, UnreadableBlob | BlobNotFound | BlobFailure>
}>() {}
