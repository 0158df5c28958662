import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { layer, make } from "../../../src/adapters/blob/FileBlobStore.js"
import { BlobStore } from "../../../src/ports/BlobStore.js"

const bytes = (text: string) => new TextEncoder().encode(text)

/** A fresh directory, removed when the test's scope closes. */
const tempDir = Effect.acquireRelease(
  Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "file-blob-store-"))),
  (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
)

/** A store whose prefix is a fresh directory (`root/data`), with `root` for paths outside it. */
const setup = Effect.gen(function*() {
  const root = yield* tempDir
  const data = path.join(root, "data")
  const prefix = pathToFileURL(data).href
  const store = yield* make({ storagePrefix: prefix })
  return { root, data, prefix, store }
})

const listing = (dir: string) => Effect.promise(() => fs.readdir(dir))

describe("FileBlobStore", () => {
  it.scoped("writes under the prefix, creating directories, and reads the bytes back", () =>
    Effect.gen(function*() {
      const { data, prefix, store } = yield* setup
      const uri = `${prefix}/p/d/r1/inputs/inputs.pb`
      yield* store.write(uri, bytes("first"))
      expect(yield* store.read(uri)).toEqual(bytes("first"))
      yield* store.write(uri, bytes("second, longer"))
      expect(yield* store.read(uri)).toEqual(bytes("second, longer"))
      const onDisk = yield* Effect.promise(() => fs.readFile(path.join(data, "p/d/r1/inputs/inputs.pb"), "utf8"))
      expect(onDisk).toBe("second, longer")
      expect(yield* listing(path.join(data, "p/d/r1/inputs"))).toEqual(["inputs.pb"])
    }))

  it.scoped("deleteFolder deletes the folder with all in it, and its parent once empty; never outside the prefix", () =>
    Effect.gen(function*() {
      const { data, prefix, root, store } = yield* setup
      yield* store.write(`${prefix}/p/d/r1/inputs/inputs.pb`, bytes("one"))
      yield* store.write(`${prefix}/p/d/r1/inputs/more/x.pb`, bytes("two"))
      yield* store.write(`${prefix}/p/d/r2/inputs/inputs.pb`, bytes("kept"))
      yield* store.write(`${prefix}/p/d/r3/inputs/inputs.pb`, bytes("three"))
      yield* store.write(`${prefix}/p/d/r3/outputs/o.pb`, bytes("outputs"))
      yield* store.deleteFolder(`${prefix}/p/d/r1/inputs`)
      yield* store.deleteFolder(`${prefix}/p/d/r3/inputs`)
      expect((yield* listing(path.join(data, "p/d"))).sort()).toEqual(["r2", "r3"])
      expect(yield* listing(path.join(data, "p/d/r3"))).toEqual(["outputs"])
      expect(yield* store.read(`${prefix}/p/d/r2/inputs/inputs.pb`)).toEqual(bytes("kept"))
      // Not there (any more): nothing to do.
      yield* store.deleteFolder(`${prefix}/p/d/r1/inputs`)
      yield* store.deleteFolder(`${prefix}/p/d/never/inputs`)
      yield* Effect.promise(() => fs.mkdir(path.join(root, "outside")))
      const outside = yield* Effect.flip(store.deleteFolder(pathToFileURL(path.join(root, "outside")).href))
      expect(outside._tag).toBe("UnreadableBlob")
      expect((yield* Effect.flip(store.deleteFolder("s3://bucket/p/d/r1/inputs")))._tag).toBe("UnreadableBlob")
      expect((yield* Effect.flip(store.deleteFolder(prefix)))._tag).toBe("UnreadableBlob")
      expect(yield* listing(root)).toContain("outside")
    }))

  it.scoped("staged bytes replace the blob only when published; discarding leaves what was there", () =>
    Effect.gen(function*() {
      const { data, prefix, store } = yield* setup
      const uri = `${prefix}/p/d/r2/inputs/inputs.pb`
      yield* store.write(uri, bytes("kept"))
      const dropped = yield* store.stage(uri, bytes("dropped"))
      const published = yield* store.stage(uri, bytes("published"))
      expect(yield* store.read(uri)).toEqual(bytes("kept"))
      yield* dropped.discard
      expect(yield* store.read(uri)).toEqual(bytes("kept"))
      yield* published.publish
      yield* published.discard
      expect(yield* store.read(uri)).toEqual(bytes("published"))
      expect(yield* listing(path.join(data, "p/d/r2/inputs"))).toEqual(["inputs.pb"])
    }))

  it.scoped("stages only under the prefix, and a staged blob that is never published leaves no file", () =>
    Effect.gen(function*() {
      const { data, prefix, root, store } = yield* setup
      const outside = yield* Effect.flip(store.stage(pathToFileURL(path.join(root, "elsewhere.pb")).href, bytes("x")))
      expect(outside._tag).toBe("UnreadableBlob")
      const staged = yield* store.stage(`${prefix}/p/d/r3/inputs/inputs.pb`, bytes("x"))
      expect(yield* Effect.flip(store.read(`${prefix}/p/d/r3/inputs/inputs.pb`))).toMatchObject({ _tag: "BlobNotFound" })
      yield* staged.discard
      expect(yield* listing(path.join(data, "p/d/r3/inputs"))).toEqual([])
    }))

  it.scoped("decodes percent-escapes", () =>
    Effect.gen(function*() {
      const { data, prefix, store } = yield* setup
      yield* store.write(`${prefix}/my%20project/caf%C3%A9.pb`, bytes("x"))
      expect(yield* listing(path.join(data, "my project"))).toEqual(["café.pb"])
      expect(yield* store.read(pathToFileURL(path.join(data, "my project", "café.pb")).href)).toEqual(bytes("x"))
    }))

  it.scoped("leaves whole contents and no temp files after concurrent writes to one URI", () =>
    Effect.gen(function*() {
      const { data, prefix, store } = yield* setup
      const uri = `${prefix}/same.pb`
      const contents = Array.from({ length: 20 }, (_, i) => String(i).repeat(10_000))
      yield* Effect.forEach(contents, (text) => store.write(uri, bytes(text)), { concurrency: "unbounded" })
      const read = new TextDecoder().decode(yield* store.read(uri))
      expect(contents).toContain(read)
      expect(yield* listing(data)).toEqual(["same.pb"])
    }))

  it.scoped("refuses to write other schemes, naming the scheme", () =>
    Effect.gen(function*() {
      const { store } = yield* setup
      const error = yield* Effect.flip(store.write("s3://bucket/x", bytes("x")))
      expect(error._tag).toBe("UnreadableBlob")
      expect(error).toMatchObject({ message: "cannot write s3://bucket/x: this server stores only file:// URIs" })
    }))

  it.scoped("refuses to write outside the storage prefix", () =>
    Effect.gen(function*() {
      const { root, prefix, store } = yield* setup
      const outside = [
        pathToFileURL(path.join(root, "elsewhere.pb")).href,
        `${prefix}-sibling/x.pb`,
        `${prefix}/../escape.pb`,
        `${prefix}/%2e%2e/escape.pb`,
        prefix
      ]
      for (const uri of outside) {
        const error = yield* Effect.flip(store.write(uri, bytes("x")))
        expect(error).toMatchObject({ _tag: "UnreadableBlob", message: `cannot write ${uri}: outside the storage prefix ${prefix}` })
      }
      expect(yield* listing(root)).toEqual([])
    }))

  it.scoped("writes nowhere when the storage prefix is not a file:// URI", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      const store = yield* make({ storagePrefix: "s3://bucket/runs" })
      const uri = pathToFileURL(path.join(root, "x.pb")).href
      const error = yield* Effect.flip(store.write(uri, bytes("x")))
      expect(error).toMatchObject({ message: `cannot write ${uri}: outside the storage prefix s3://bucket/runs` })
    }))

  it.scoped("refuses relative and malformed file URIs", () =>
    Effect.gen(function*() {
      const { prefix, store } = yield* setup
      const cases: ReadonlyArray<readonly [string, string]> = [
        ["file:data/x.pb", "not an absolute file:// URI"],
        ["file:/tmp/x.pb", "not an absolute file:// URI"],
        ["/tmp/x.pb", "not an absolute file:// URI"],
        ["data/x.pb", "not an absolute file:// URI"],
        ["", "not an absolute file:// URI"],
        ["file://otherhost/x.pb", "not a valid file:// URI"],
        [`${prefix}/100%`, "not a valid file:// URI"],
        [`${prefix}/a%2fb.pb`, "not a valid file:// URI"],
        [`${prefix}/a%00b.pb`, "not a valid file:// URI"],
        [`${prefix}/x.pb?version=2`, "a file:// URI has no query or fragment"],
        [`${prefix}/x.pb#frag`, "a file:// URI has no query or fragment"],
        [`${prefix}/dir/`, "names a directory, not a file"]
      ]
      for (const [uri, why] of cases) {
        const written = yield* Effect.flip(store.write(uri, bytes("x")))
        expect(written).toMatchObject({ _tag: "UnreadableBlob", message: `cannot write ${uri}: ${why}` })
        const read = yield* Effect.flip(store.read(uri))
        expect(read).toMatchObject({ _tag: "UnreadableBlob", message: `cannot read ${uri}: ${why}` })
      }
    }))

  it.scoped("answers BlobFailure with a short reason when a parent is a file", () =>
    Effect.gen(function*() {
      const { data, prefix, store } = yield* setup
      yield* store.write(`${prefix}/file`, bytes("x"))
      for (const [uri, code] of [[`${prefix}/file/child.pb`, "EEXIST"], [`${prefix}/file/sub/child.pb`, "ENOTDIR"]]) {
        const error = yield* Effect.flip(store.write(uri!, bytes("y")))
        expect({ ...error }).toEqual({ _tag: "BlobFailure", uri, reason: `a parent is not a directory (${code})` })
      }
      expect(yield* listing(data)).toEqual(["file"])
    }))

  it.scoped("reads file:// URIs outside the prefix (executors write outputs anywhere)", () =>
    Effect.gen(function*() {
      const { root, store } = yield* setup
      const file = path.join(root, "outputs", "outputs.pb")
      yield* Effect.promise(() => fs.mkdir(path.dirname(file), { recursive: true }))
      yield* Effect.promise(() => fs.writeFile(file, "out"))
      const read = yield* store.read(pathToFileURL(file).href)
      expect(read).toEqual(bytes("out"))
      expect(read).toBeInstanceOf(Uint8Array)
      expect(Buffer.isBuffer(read)).toBe(false)
    }))

  it.scoped("answers BlobNotFound for a missing file, even below a file", () =>
    Effect.gen(function*() {
      const { prefix, store } = yield* setup
      expect({ ...(yield* Effect.flip(store.read(`${prefix}/nope.pb`))) }).toEqual({
        _tag: "BlobNotFound",
        uri: `${prefix}/nope.pb`
      })
      yield* store.write(`${prefix}/file`, bytes("x"))
      expect((yield* Effect.flip(store.read(`${prefix}/file/below.pb`)))._tag).toBe("BlobNotFound")
    }))

  it.scoped("refuses to read other schemes, naming the scheme", () =>
    Effect.gen(function*() {
      const { store } = yield* setup
      for (const uri of ["s3://bucket/runs/inputs.pb", "gs://b/x", "https://example.com/x"]) {
        expect(yield* Effect.flip(store.read(uri))).toMatchObject({
          _tag: "UnreadableBlob",
          message: `cannot read ${uri}: only file:// URIs can be read by this server`
        })
      }
    }))

  it.scoped("answers BlobFailure without the path for a directory", () =>
    Effect.gen(function*() {
      const { prefix, store } = yield* setup
      yield* store.write(`${prefix}/dir/x.pb`, bytes("x"))
      const error = yield* Effect.flip(store.read(`${prefix}/dir`))
      expect({ ...error }).toEqual({ _tag: "BlobFailure", uri: `${prefix}/dir`, reason: "is a directory (EISDIR)" })
    }))

  it.scoped("provides the BlobStore port as a layer", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      const prefix = pathToFileURL(root).href
      yield* Effect.gen(function*() {
        const store = yield* BlobStore
        yield* store.write(`${prefix}/a/b.pb`, bytes("layer"))
        expect(yield* store.read(`${prefix}/a/b.pb`)).toEqual(bytes("layer"))
      }).pipe(Effect.provide(layer({ storagePrefix: `${prefix}/` })))
    }))
})
