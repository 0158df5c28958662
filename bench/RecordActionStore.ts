import { Effect, Layer } from "effect"
import { runMigrations } from "../src/adapters/sql/SqlMigrations.js"
import * as SqlRunStore from "../src/adapters/sql/SqlRunStore.js"
import { ActionPhase } from "../src/domain/Phase.js"
import { RunStore } from "../src/ports/RunStore.js"
import { childAction, runView } from "../test/support/Fixtures.js"
import { layerTestPostgres, layerTestSqlite } from "../test/support/TestDatabases.js"

/**
 * The store alone under a fan-out's records: 5,000 children of one run recorded by 32 callers at once, three
 * rounds, on a fresh database; prints the rate and the process's CPU time per record. No RPC, no domain: it
 * tells a change to the store's write path apart from the rest of the service.
 * `npx tsx bench/RecordActionStore.ts sqlite`, or `postgres` with TEST_POSTGRES_URL set.
 */
const children = 5000
const database = process.argv[2] === "postgres" ? layerTestPostgres : layerTestSqlite

const rounds = Effect.gen(function*() {
  const store = yield* RunStore
  for (let round = 1; round <= 3; round++) {
    const view = runView({ phase: ActionPhase.RUNNING })
    yield* store.createRun({ view, task: undefined })
    const actions = Array.from({ length: children }, (_, i) => childAction(view, `c${i}`))
    const cpu = process.cpuUsage()
    const start = performance.now()
    // No events came before these children: their attempts are never rebuilt.
    const rebuild = () => Effect.runSync(Effect.dieMessage("no events were recorded"))
    yield* Effect.forEach(actions, (action) => store.recordAction(action, rebuild), { concurrency: 32, discard: true })
    const used = process.cpuUsage(cpu)
    const seconds = (performance.now() - start) / 1000
    console.log(
      `round ${round}: ${(children / seconds).toFixed(0)} records/s, ` +
        `CPU ${((used.user + used.system) / children).toFixed(0)} µs per record`
    )
  }
})

await Effect.runPromise(Effect.scoped(Effect.provide(
  rounds,
  Layer.provide(SqlRunStore.layer, Layer.provideMerge(Layer.effectDiscard(runMigrations), database))
)))
