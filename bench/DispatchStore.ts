import { Effect, Layer, Logger, LogLevel } from "effect"
import * as LoggingDispatcher from "../src/adapters/dispatch/LoggingDispatcher.js"
import * as OutboxWorker from "../src/adapters/dispatch/OutboxWorker.js"
import { runMigrations } from "../src/adapters/sql/SqlMigrations.js"
import * as SqlOutbox from "../src/adapters/sql/SqlOutbox.js"
import * as SqlRunStore from "../src/adapters/sql/SqlRunStore.js"
import { Outbox } from "../src/ports/Outbox.js"
import { RunStore } from "../src/ports/RunStore.js"
import { dispatchableView, layerMigrated } from "../test/support/Dispatch.js"
import { layerTestPostgres, layerTestSqlite } from "../test/support/TestDatabases.js"

/**
 * The outbox worker alone, draining what CreateRun leaves it: 5,000 runs' enqueue requests written first, then
 * the worker with the `none` dispatcher (its log lines below the logger's level, as in the bench) started on
 * them, three rounds on one database. Prints the rate and the process's CPU time per request delivered. No RPC:
 * it tells a change to the dispatch path apart from the rest of the service.
 * `npx tsx bench/DispatchStore.ts sqlite`, or `postgres` with TEST_POSTGRES_URL set.
 */
const requests = 5000
const database = process.argv[2] === "postgres" ? layerTestPostgres : layerTestSqlite

const worker = OutboxWorker.layer({ maxAge: "1 hour" }).pipe(
  Layer.provide(LoggingDispatcher.layer),
  Layer.provide(layerMigrated)
)

const rounds = Effect.gen(function*() {
  const store = yield* RunStore
  const outbox = yield* Outbox
  for (let round = 1; round <= 3; round++) {
    yield* Effect.forEach(
      Array.from({ length: requests }, () => dispatchableView()),
      (view) => store.createRun({ view, task: undefined }),
      { concurrency: 32, discard: true }
    )
    const cpu = process.cpuUsage()
    const start = performance.now()
    yield* Effect.scoped(Effect.gen(function*() {
      yield* Layer.build(worker)
      // Looked at every 50 ms: a small part of the CPU measured next to the worker's.
      while ((yield* outbox.backlog).pending > 0) yield* Effect.sleep("50 millis")
    }))
    const used = process.cpuUsage(cpu)
    const seconds = (performance.now() - start) / 1000
    console.log(
      `round ${round}: ${(requests / seconds).toFixed(0)} requests/s, ` +
        `CPU ${((used.user + used.system) / requests).toFixed(0)} µs per request`
    )
  }
})

await Effect.runPromise(Effect.scoped(Effect.provide(
  rounds,
  Layer.mergeAll(SqlRunStore.layer, SqlOutbox.layer).pipe(
    Layer.provide(Layer.provideMerge(Layer.effectDiscard(runMigrations), database)),
    Layer.provideMerge(Logger.minimumLogLevel(LogLevel.Warning))
  )
)))
