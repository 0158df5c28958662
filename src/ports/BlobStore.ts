import { Context, Data, type Effect } from "effect"

/** A URI of a scheme this server cannot read or write (answered `FailedPrecondition`). */
export class UnreadableBlob extends Data.TaggedError("UnreadableBlob")<{ readonly message: string }> {}

/** Nothing is stored at the URI. */
export class BlobNotFound extends Data.TaggedError("BlobNotFound")<{ readonly uri: string }> {}

/** Reading or writing failed for another reason (permissions, disk full...). */
export class BlobFailure extends Data.TaggedError("BlobFailure")<{ readonly uri: string; readonly reason: string }> {}

/** Bytes written where no reader sees them, that become the blob at their URI only when published. */
export interface StagedBlob {
  /** Makes the bytes the blob at the URI, replacing what is there, all at once. */
  readonly publish: Effect.Effect<void, BlobFailure>
  /** Drops the bytes unless they were published. */
  readonly discard: Effect.Effect<void>
}

/** Inputs and outputs by URI: `file://` under `runs.storagePrefix`; other schemes are passed on, not read. */
export class BlobStore extends Context.Tag("runs/BlobStore")<BlobStore, {
  /** Writes (replacing) the bytes at `uri`, creating parent directories. */
  readonly write: (uri: string, bytes: Uint8Array) => Effect.Effect<void, UnreadableBlob | BlobFailure>
  /** Writes the bytes for `uri` (creating parent directories) without replacing what is there yet. */
  readonly stage: (uri: string, bytes: Uint8Array) => Effect.Effect<StagedBlob, UnreadableBlob | BlobFailure>
  readonly read: (uri: string) => Effect.Effect<Uint8Array, UnreadableBlob | BlobNotFound | BlobFailure>
  /** Deletes the folder at `uri` with everything in it (nothing to do when it is not there), then its parent
   * folder if that leaves it empty; `UnreadableBlob` where this store never writes (another scheme, outside
   * the storage prefix). */
  readonly deleteFolder: (uri: string) => Effect.Effect<void, UnreadableBlob | BlobFailure>
}>() {}
