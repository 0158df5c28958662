import type { SqliteClient } from "@effect/sql-sqlite-node"
import { Deferred, Duration, Effect, Either, FiberId, Option, type Scope } from "effect"
import { createRequire } from "node:module"
import { Worker } from "node:worker_threads"

export interface CheckpointOptions {
  /** The database file (the service's own connection has it open, in WAL mode). */
  readonly file: string
  /** How often the worker moves what the write-ahead log holds into the database file. */
  readonly every: Duration.DurationInput
}

/** SQLite's own threshold, in pages of the write-ahead log, when the worker is not there to checkpoint. */
const autocheckpointPages = 1000

// The worker's whole program (CommonJS, run from a string so that the bundle needs no second file). A PASSIVE
// checkpoint never waits for a lock: a busy database is left for the next turn. Any other failure ends the
// worker, and the service goes back to SQLite's own checkpoints.
const workerProgram = `
const { parentPort, workerData } = require("node:worker_threads")
const Database = require(workerData.driver)
const db = new Database(workerData.file, { fileMustExist: true })
const checkpoint = () => {
  try {
    db.pragma("wal_checkpoint(PASSIVE)")
  } catch (error) {
    if (error && error.code === "SQLITE_BUSY") return
    throw error
  }
}
const timer = setInterval(checkpoint, workerData.everyMillis)
parentPort.on("message", () => {
  clearInterval(timer)
  checkpoint()
  db.close()
  parentPort.close()
})
parentPort.postMessage("ready")
`

const driverPath = () => createRequire(import.meta.url).resolve("better-sqlite3")

interface Checkpointer {
  readonly worker: Worker
  /** Done once the worker has opened the database, or failed to. */
  readonly ready: Deferred.Deferred<void, string>
  /** Done with the reason once the worker fails or ends. */
  readonly ended: Deferred.Deferred<string>
}

const spawn = (options: CheckpointOptions) =>
  Effect.try({
    try: (): Checkpointer => {
      const worker = new Worker(workerProgram, {
        eval: true,
        workerData: { file: options.file, driver: driverPath(), everyMillis: Duration.toMillis(options.every) }
      })
      const ready = Deferred.unsafeMake<void, string>(FiberId.none)
      const ended = Deferred.unsafeMake<string>(FiberId.none)
      const end = (reason: string) => {
        Deferred.unsafeDone(ready, Effect.fail(reason))
        Deferred.unsafeDone(ended, Effect.succeed(reason))
      }
      // Listened to for the worker's whole life: an "error" event with no listener would end the process.
      worker.on("error", (error) => end(error.message))
      worker.on("exit", (code) => end(`it exited with code ${code}`))
      worker.once("message", () => Deferred.unsafeDone(ready, Effect.void))
      return { worker, ready, ended }
    },
    catch: (error) => String(error)
  })

/** Asks the worker to checkpoint once more and close its connection; ends it if it has not within 2 s. */
const stop = ({ ended, worker }: Checkpointer) =>
  Effect.sync(() => worker.postMessage("stop")).pipe(
    Effect.zipRight(Deferred.await(ended)),
    Effect.timeoutOption("2 seconds"),
    Effect.zipRight(Effect.promise(() => worker.terminate())),
    Effect.asVoid
  )

/**
 * Checkpoints the write-ahead log from a worker thread with a connection of its own, instead of SQLite's
 * automatic checkpoints, which run inside the COMMIT that crosses 1,000 pages of log: copying those pages into
 * the database file and syncing it held the event loop for 2 to 27 ms every few dozen commits under CreateRun's
 * load. When the worker cannot start, or fails later, SQLite's own checkpoints are turned back on. The worker,
 * when it started (to see that fallback in tests).
 */
export const checkpointInBackground = (
  client: SqliteClient.SqliteClient,
  options: CheckpointOptions
): Effect.Effect<Option.Option<Worker>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const started = yield* Effect.acquireRelease(
      spawn(options).pipe(Effect.tap((checkpointer) => Deferred.await(checkpointer.ready)), Effect.either),
      (started) => Either.isRight(started) ? stop(started.right) : Effect.void
    )
    if (Either.isLeft(started)) {
      yield* Effect.logWarning(`SQLite checkpoints stay on the main thread: the worker did not start (${started.left})`)
      return Option.none()
    }
    yield* Effect.ignore(client.unsafe(`PRAGMA wal_autocheckpoint = 0`))
    yield* Deferred.await(started.right.ended).pipe(
      Effect.flatMap((reason) =>
        Effect.logWarning(`SQLite checkpoints are back on the main thread: the worker stopped (${reason})`).pipe(
          Effect.zipRight(Effect.ignore(client.unsafe(`PRAGMA wal_autocheckpoint = ${autocheckpointPages}`)))
        )
      ),
      Effect.interruptible,
      Effect.forkScoped
    )
    return Option.some(started.right.worker)
  })
