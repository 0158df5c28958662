import { Effect, Option, Runtime, type Scope } from "effect"
import * as fs from "node:fs/promises"
import { Worker } from "node:worker_threads"

/** Which step of a new file's write failed, and Node's error (with its `code`) or the worker's copy of it. */
export interface NewFileFailure {
  readonly step: "mkdir" | "write"
  readonly error: unknown
}

/** Creates `directory` with its parents and writes `bytes` to the new file `file`, synced before it is closed. */
export type WriteNewFile = (directory: string, file: string, bytes: Uint8Array) => Effect.Effect<void, NewFileFailure>

/** The same steps on this thread, through libuv's pool: what the worker does, and the way back when it is gone. */
export const writeNewFileHere: WriteNewFile = (directory, file, bytes) =>
  Effect.tryPromise({
    try: () => fs.mkdir(directory, { recursive: true }),
    catch: (error): NewFileFailure => ({ step: "mkdir", error })
  }).pipe(
    Effect.zipRight(Effect.tryPromise({
      // `flush` syncs the data before the file is closed.
      try: () => fs.writeFile(file, bytes, { flag: "wx", flush: true }),
      catch: (error): NewFileFailure => ({ step: "write", error })
    }))
  )

// The worker's whole program (CommonJS, run from a string so that the bundle needs no second file). Requests come
// in batches and run side by side, their system calls in libuv's pool as on the main thread, so that one file's
// sync does not hold up the next. Each is answered with its id, and on failure the step and the error's code;
// the answers of one turn of the worker's loop go back together. A message wakes the thread it is sent to,
// which costs more than the copy: so one message a turn each way, not one a file.
const workerProgram = `
const { parentPort } = require("node:worker_threads")
const fs = require("node:fs")
let replies = []
const reply = (answer) => {
  if (replies.length === 0) setImmediate(() => { parentPort.postMessage(replies); replies = [] })
  replies.push(answer)
}
const write = ({ id, directory, file, bytes }) => {
  const fail = (step, error) => reply({ id, step, code: error.code === undefined ? "EIO" : error.code })
  fs.mkdir(directory, { recursive: true }, (error) => {
    if (error) return fail("mkdir", error)
    fs.open(file, "wx", (error, fd) => {
      if (error) return fail("write", error)
      const close = (error) => fs.close(fd, (closed) => (error || closed) ? fail("write", error || closed) : reply({ id }))
      fs.writeFile(fd, bytes, (error) => error ? close(error) : fs.fsync(fd, close))
    })
  })
}
parentPort.on("message", (requests) => requests.forEach(write))
`

interface Request {
  readonly id: number
  readonly directory: string
  readonly file: string
  readonly bytes: Uint8Array
}

interface Reply {
  readonly id: number
  readonly step?: "mkdir" | "write"
  readonly code?: string
}

export interface WriterThread {
  readonly writeNewFile: WriteNewFile
  /** The worker while it runs (for tests to stop it); none before the first write, once it has stopped, or when it
   * could not start. */
  readonly worker: () => Option.Option<Worker>
}

/**
 * New files written from a worker thread. Under CreateRun's load, the main thread's share of an inputs file
 * (the promises of `fs/promises`' file handle: open, write, sync, close, each a round trip through libuv's pool)
 * was as large as any other part of the request, and the main thread is what sets the rate; the worker takes
 * the round trips, and the main thread only hands over the bytes and takes the answer. If the worker cannot
 * start or stops, the writes in flight fail, those after are made on this thread, and a warning is logged. The
 * worker starts with the first write and ends with the scope.
 */
export const startWriterThread: Effect.Effect<WriterThread, never, Scope.Scope> = Effect.gen(function*() {
  const pending = new Map<number, (reply: Reply) => void>()
  let nextId = 0
  let outgoing: Array<Request> = []
  let current: Worker | undefined
  let closing = false
  const runtime = yield* Effect.runtime<never>()
  const warn = (message: string) => Runtime.runFork(runtime)(Effect.logWarning(message))

  const stopped = (reason: string) => {
    if (current === undefined) return
    current = undefined
    const waiting = Array.from(pending.entries())
    pending.clear()
    for (const [id, resume] of waiting) resume({ id, step: "write", code: "the writer thread stopped" })
    if (!closing) warn(`files are written on the main thread from now on: the writer thread stopped (${reason})`)
  }

  /** Started with the first write: a process that writes no file (a replica that only serves reads) has no thread. */
  let started = false
  const start = () => {
    started = true
    try {
      const worker = new Worker(workerProgram, { eval: true })
      // The scope ends it; until then it must not keep a process alive that has nothing else to do.
      worker.unref()
      worker.on("message", (replies: ReadonlyArray<Reply>) => {
        for (const reply of replies) {
          const resume = pending.get(reply.id)
          pending.delete(reply.id)
          resume?.(reply)
        }
      })
      // Listened to for the worker's whole life: an "error" event with no listener would end the process.
      worker.on("error", (error) => stopped(error.message))
      worker.on("exit", (code) => stopped(`it exited with code ${code}`))
      current = worker
    } catch (error) {
      warn(`files are written on the main thread: the writer thread did not start (${String(error)})`)
    }
  }

  yield* Effect.addFinalizer(() =>
    Effect.suspend(() => {
      closing = true
      const worker = current
      return worker === undefined ? Effect.void : Effect.promise(() => worker.terminate())
    })
  )

  const writeNewFile: WriteNewFile = (directory, file, bytes) =>
    Effect.suspend(() => {
      if (!started && !closing) start()
      const worker = current
      if (worker === undefined) return writeNewFileHere(directory, file, bytes)
      return Effect.async<void, NewFileFailure>((resume) => {
        const id = ++nextId
        let answered = false
        let onAnswer: (() => void) | undefined
        pending.set(id, (reply) => {
          answered = true
          onAnswer?.()
          resume(
            reply.step === undefined
              ? Effect.void
              : Effect.fail({ step: reply.step, error: { code: reply.code } })
          )
        })
        if (outgoing.length === 0) {
          setImmediate(() => {
            const requests = outgoing
            outgoing = []
            worker.postMessage(requests)
          })
        }
        outgoing.push({ id, directory, file, bytes })
        // Interrupted (the caller went away): the write goes on in the worker, so the interruption waits for its
        // answer, and whatever the caller does next (removing the file) comes after the file is there.
        return Effect.async<void>((wake) => {
          if (answered) wake(Effect.void)
          else onAnswer = () => wake(Effect.void)
        })
      })
    })

  return { writeNewFile, worker: () => Option.fromNullable(current) }
})
