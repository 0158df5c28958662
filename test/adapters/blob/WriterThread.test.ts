import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Logger, Option } from "effect"
import { startWriterThread, type WriteNewFile, writeNewFileHere } from "../../../src/adapters/blob/WriterThread.js"

const bytes = (text: string) => new TextEncoder().encode(text)

const tempDir = Effect.acquireRelease(
  Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "writer-thread-"))),
  (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
)

const codeOf = (error: unknown) => (error as { readonly code?: string }).code

// The worker and the main thread's way back answer alike.
describe.each([
  ["the writer thread", Effect.map(startWriterThread, (thread) => thread.writeNewFile)],
  ["the main thread", Effect.succeed(writeNewFileHere)]
] as const)("writing a new file on %s", (_, start) => {
  it.scoped("creates the directories and the file with its bytes", () =>
    Effect.gen(function*() {
      const write: WriteNewFile = yield* start
      const dir = yield* tempDir
      yield* write(path.join(dir, "a/b/c"), path.join(dir, "a/b/c/file.pb"), bytes("inputs"))
      yield* write(path.join(dir, "a/b/c"), path.join(dir, "a/b/c/other.pb"), bytes("more"))
      expect(yield* Effect.promise(() => fs.readFile(path.join(dir, "a/b/c/file.pb"), "utf8"))).toBe("inputs")
      expect((yield* Effect.promise(() => fs.readdir(path.join(dir, "a/b/c")))).sort()).toEqual(["file.pb", "other.pb"])
    }))

  it.scoped("writes many files at once, each answered for itself", () =>
    Effect.gen(function*() {
      const write: WriteNewFile = yield* start
      const dir = yield* tempDir
      const names = Array.from({ length: 40 }, (_, i) => `f${i}`)
      // Every fourth one fails: its directory is below a file.
      yield* write(dir, path.join(dir, "blocker"), bytes("a file"))
      const outcomes = yield* Effect.forEach(names, (name, i) => {
        const directory = i % 4 === 3 ? path.join(dir, "blocker", name) : path.join(dir, name)
        return Effect.either(write(directory, path.join(directory, "inputs.pb"), bytes(name)))
      }, { concurrency: "unbounded" })
      expect(outcomes.map((outcome, i) => [i, outcome._tag])).toEqual(names.map((_, i) => [i, i % 4 === 3 ? "Left" : "Right"]))
      for (const [i, name] of names.entries()) {
        if (i % 4 === 3) continue
        expect(yield* Effect.promise(() => fs.readFile(path.join(dir, name, "inputs.pb"), "utf8"))).toBe(name)
      }
    }))

  it.scoped("fails at the step that failed, with the system's code, and never replaces a file", () =>
    Effect.gen(function*() {
      const write: WriteNewFile = yield* start
      const dir = yield* tempDir
      yield* write(dir, path.join(dir, "file"), bytes("first"))
      const again = yield* Effect.flip(write(dir, path.join(dir, "file"), bytes("second")))
      expect([again.step, codeOf(again.error)]).toEqual(["write", "EEXIST"])
      expect(yield* Effect.promise(() => fs.readFile(path.join(dir, "file"), "utf8"))).toBe("first")
      const below = yield* Effect.flip(write(path.join(dir, "file", "sub"), path.join(dir, "file", "sub", "x"), bytes("y")))
      expect([below.step, codeOf(below.error)]).toEqual(["mkdir", "ENOTDIR"])
    }))
})

describe("the writer thread", () => {
  it.scoped("once stopped, files are written on the main thread and a warning says so", () =>
    Effect.gen(function*() {
      const warned = yield* Deferred.make<string>()
      const logger = Logger.make(({ message }) => Deferred.unsafeDone(warned, Effect.succeed(String(message))))
      const thread = yield* startWriterThread.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
      const dir = yield* tempDir
      yield* thread.writeNewFile(dir, path.join(dir, "before"), bytes("by the worker"))
      const worker = Option.getOrThrow(thread.worker())
      yield* Effect.promise(() => worker.terminate())
      expect(yield* Deferred.await(warned)).toMatch(/^files are written on the main thread from now on: the writer thread stopped/)
      expect(Option.isNone(thread.worker())).toBe(true)
      yield* thread.writeNewFile(dir, path.join(dir, "after"), bytes("by the main thread"))
      expect(yield* Effect.promise(() => fs.readFile(path.join(dir, "after"), "utf8"))).toBe("by the main thread")
    }))

  it.scoped("an interrupted write is interrupted once the file is there, so that its caller's clean-up comes after it", () =>
    Effect.gen(function*() {
      const thread = yield* startWriterThread
      const dir = yield* tempDir
      const file = path.join(dir, "sub", "file")
      const writing = yield* Effect.fork(thread.writeNewFile(path.join(dir, "sub"), file, bytes("whole")))
      // The first write starts the worker and hands it the request in the same step.
      while (Option.isNone(thread.worker())) yield* Effect.yieldNow()
      yield* Fiber.interrupt(writing)
      expect(yield* Effect.promise(() => fs.readFile(file, "utf8"))).toBe("whole")
    }))

  it.scoped("starts with the first write and ends with its scope", () =>
    Effect.gen(function*() {
      const exited = yield* Deferred.make<number>()
      const dir = yield* tempDir
      yield* Effect.scoped(Effect.gen(function*() {
        const thread = yield* startWriterThread
        expect(Option.isNone(thread.worker())).toBe(true)
        yield* thread.writeNewFile(dir, path.join(dir, "file"), bytes("x"))
        Option.getOrThrow(thread.worker()).once("exit", (code) => Deferred.unsafeDone(exited, Effect.succeed(code)))
      }))
      expect(typeof (yield* Deferred.await(exited))).toBe("number")
    }))
})
