import { randomUUID } from "node:crypto"
import { renameSync } from "node:fs"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, Either, Layer, type Scope } from "effect"
import { BlobFailure, BlobNotFound, BlobStore, type StagedBlob, UnreadableBlob } from "../../ports/BlobStore.js"
import { withSpanWhenTraced } from "../../ports/Spans.js"
import { startWriterThread, type WriteNewFile } from "./WriterThread.js"

export interface FileBlobStoreOptions {
  /** `runs.storagePrefix`: writes go only under it when it is a `file://` URI, nowhere when it is not. */
  readonly storagePrefix: string
}

const schemeOf = (uri: string): string | undefined => /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(uri)?.[1]?.toLowerCase()

const refuse = (message: string) => Either.left(new UnreadableBlob({ message }))

/** The local path a `file://` URI names, its percent-escapes decoded; anything else is refused. */
const localPath = (uri: string, verb: "read" | "write"): Either.Either<string, UnreadableBlob> => {
  const scheme = schemeOf(uri)
  if (scheme !== undefined && scheme !== "file") {
    return refuse(
      verb === "read"
        ? `cannot read ${uri}: only file:// URIs can be read by this server`
        : `cannot write ${uri}: this server stores only file:// URIs`
    )
  }
  const malformed = (why: string) => refuse(`cannot ${verb} ${uri}: ${why}`)
  // The URL parser would read `file:data/x` as `file:///data/x`; only the absolute form is meant.
  if (!/^file:\/\//i.test(uri)) return malformed("not an absolute file:// URI")
  if (/[?#]/.test(uri)) return malformed("a file:// URI has no query or fragment")
  const decoded = Either.try(() => fileURLToPath(new URL(uri)))
  if (Either.isLeft(decoded)) return malformed("not a valid file:// URI")
  if (decoded.right.includes("\0")) return malformed("not a valid file:// URI")
  if (decoded.right.endsWith("/")) return malformed("names a directory, not a file")
  return Either.right(decoded.right)
}

const reasons: Readonly<Record<string, string>> = {
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  EROFS: "read-only file system",
  EISDIR: "is a directory",
  ENOTDIR: "a parent is not a directory",
  EMFILE: "too many open files",
  ENAMETOOLONG: "name too long",
  ELOOP: "too many symbolic links",
  EIO: "I/O error"
}

const codeOf = (error: unknown): string | undefined => {
  const code = typeof error === "object" && error !== null && "code" in error ? error.code : undefined
  return typeof code === "string" ? code : undefined
}

/** A short reason without the path or stack that Node puts in its messages. */
const failure = (uri: string, error: unknown, overrides: Readonly<Record<string, string>> = {}): BlobFailure => {
  const code = codeOf(error)
  const text = code === undefined ? undefined : overrides[code] ?? reasons[code]
  const reason = code === undefined ? "I/O error" : text === undefined ? code : `${text} (${code})`
  return new BlobFailure({ uri, reason })
}

const io = <A>(
  uri: string,
  run: () => Promise<A>,
  overrides?: Readonly<Record<string, string>>
): Effect.Effect<A, BlobFailure> => Effect.tryPromise({ try: run, catch: (error) => failure(uri, error, overrides) })

/** Under `prefix` and not `prefix` itself; no symlinks are followed (the storage tree is the server's own). */
const isUnder = (prefix: string, target: string): boolean => {
  const relative = path.relative(prefix, target)
  return relative !== "" && relative !== ".." && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative)
}

/**
 * A temp file in the target's directory, published by renaming it: a reader sees the old bytes or the new,
 * never a part.
 */
const stageFile = (
  writeNewFile: WriteNewFile,
  uri: string,
  target: string,
  bytes: Uint8Array
): Effect.Effect<StagedBlob, BlobFailure> => {
  const directory = path.dirname(target)
  const temp = path.join(directory, `.${path.basename(target)}.${randomUUID()}.tmp`)
  let published = false
  const discard = Effect.suspend(() => (published ? Effect.void : Effect.ignore(io(uri, () => fs.rm(temp, { force: true })))))
  const staged: StagedBlob = {
    // One rename, made at once rather than through libuv's thread pool: a caller may hold a lock while it
    // publishes (a transaction), and in the pool the rename would wait behind other writes' syncs.
    publish: Effect.try({ try: () => renameSync(temp, target), catch: (error) => failure(uri, error) }).pipe(
      Effect.tap(() => (published = true))
    ),
    discard
  }
  return writeNewFile(directory, temp, bytes).pipe(
    // mkdir answers EEXIST when the directory to create is a file.
    Effect.mapError(({ error, step }) => failure(uri, error, step === "mkdir" ? { EEXIST: reasons["ENOTDIR"]! } : {})),
    Effect.onError(() => discard),
    Effect.as(staged)
  )
}

const writeAtomically = (writeNewFile: WriteNewFile, uri: string, target: string, bytes: Uint8Array) =>
  Effect.flatMap(stageFile(writeNewFile, uri, target, bytes), (staged) => Effect.ensuring(staged.publish, staged.discard))

const readFile = (uri: string, file: string): Effect.Effect<Uint8Array, BlobNotFound | BlobFailure> =>
  Effect.tryPromise({
    try: () => fs.readFile(file),
    catch: (error) => {
      const code = codeOf(error)
      return code === "ENOENT" || code === "ENOTDIR" ? new BlobNotFound({ uri }) : failure(uri, error)
    }
  }).pipe(Effect.map((buffer) => new Uint8Array(buffer)))

/** The store; its files are written from a worker thread of its own, which ends with the scope. */
export const make = (options: FileBlobStoreOptions): Effect.Effect<BlobStore["Type"], never, Scope.Scope> =>
  Effect.map(startWriterThread, ({ writeNewFile }) => {
    const prefix = /^file:\/\//i.test(options.storagePrefix)
      ? Either.getOrUndefined(Either.try(() => fileURLToPath(new URL(options.storagePrefix))))
      : undefined
    const writablePath = (uri: string): Either.Either<string, UnreadableBlob> =>
      Either.flatMap(localPath(uri, "write"), (target) =>
        prefix !== undefined && isUnder(prefix, target)
          ? Either.right(target)
          : refuse(`cannot write ${uri}: outside the storage prefix ${options.storagePrefix}`))
    return BlobStore.of({
      write: (uri, bytes) =>
        Effect.flatMap(writablePath(uri), (target) => writeAtomically(writeNewFile, uri, target, bytes)).pipe(
          withSpanWhenTraced("FileBlobStore.write", { attributes: { uri }, captureStackTrace: false })
        ),
      stage: (uri, bytes) =>
        Effect.flatMap(writablePath(uri), (target) => stageFile(writeNewFile, uri, target, bytes)).pipe(
          withSpanWhenTraced("FileBlobStore.stage", { attributes: { uri }, captureStackTrace: false })
        ),
      deleteFolder: (uri) =>
        Effect.flatMap(writablePath(uri), (folder) =>
          Effect.zipRight(
            io(uri, () => fs.rm(folder, { recursive: true, force: true })),
            // Only the parent, which holds nothing but this run's folders: higher folders are shared with runs
            // being created, whose writes would fail if their folder went between its creation and the write.
            Effect.ignore(io(uri, () => fs.rmdir(path.dirname(folder))).pipe(
              Effect.when(() => prefix !== undefined && isUnder(prefix, path.dirname(folder)))
            ))
          )).pipe(withSpanWhenTraced("FileBlobStore.deleteFolder", { attributes: { uri }, captureStackTrace: false })),
      // Executors write outputs anywhere on a shared filesystem, so reads are not confined to the prefix.
      read: (uri) =>
        Effect.flatMap(localPath(uri, "read"), (file) => readFile(uri, file)).pipe(
          withSpanWhenTraced("FileBlobStore.read", { attributes: { uri }, captureStackTrace: false })
        )
    })
  })

export const layer = (options: FileBlobStoreOptions): Layer.Layer<BlobStore> =>
  Layer.scoped(BlobStore, make(options))
