import { SqlClient } from "@effect/sql"
import { Effect, type Layer } from "effect"
import type { RunKey } from "../src/domain/Ids.js"
import { ActionPhase, phaseColumn } from "../src/domain/Phase.js"

type Row = Record<string, unknown>

// SQLite binds at most 32,766 parameters per statement: 500 action rows of ~45 columns stay below that.
const rowsPerInsert = 500
const runsPerTransaction = 5000

/** One in ten runs of each phase but SUCCEEDED, which has six: what a busy project's history looks like. */
const phaseOf = (index: number): ActionPhase =>
  [ActionPhase.FAILED, ActionPhase.RUNNING, ActionPhase.ABORTED, ActionPhase.TIMED_OUT][index % 10] ?? ActionPhase.SUCCEEDED

/** The name of the `index`-th seeded run. */
export const seededRunName = (index: number) => `seed-${index}`

// node-postgres hands JSON columns back parsed; they go back in as text.
const asParameter = (value: unknown) =>
  value !== null && typeof value === "object" && !(value instanceof Uint8Array) && !(value instanceof Date)
    ? JSON.stringify(value)
    : value

const withoutId = (row: Row): Row =>
  Object.fromEntries(Object.entries(row).filter(([column]) => column !== "id").map(([column, value]) => [column, asParameter(value)]))

/**
 * Writes runs `from` to `to - 1` (named by `seededRunName`) into the template run's project: copies of the
 * template's `runs` row and root action row as CreateRun stored them, each with its own name, creation time
 * (one second apart from `firstCreatedAt`) and phase. Rows go in 500 to a statement, 5,000 runs to a
 * transaction, straight through the database client: no RPC, no per-run round trip.
 */
export const seedRuns = (options: {
  readonly template: RunKey
  readonly from: number
  readonly to: number
  readonly firstCreatedAt: Date
}) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const { template } = options
    const [run] = yield* sql<Row>`SELECT * FROM runs WHERE project = ${template.project} AND domain = ${template.domain}
      AND name = ${template.name}`
    if (run === undefined) return yield* Effect.dieMessage(`template run ${template.name} not found`)
    const [root] = yield* sql<Row>`SELECT * FROM actions WHERE run_id = ${run["id"] as number} AND name = 'a0'`
    if (root === undefined) return yield* Effect.dieMessage(`template run ${template.name} has no root action`)
    const runTemplate = withoutId(run)
    const rootTemplate = withoutId(root)

    const batch = (from: number, to: number) =>
      Effect.gen(function*() {
        const ids = new Map<string, number>()
        const runs: Array<Row> = []
        const roots: Array<Row> = []
        for (let index = from; index < to; index++) {
          const name = seededRunName(index)
          const created = new Date(options.firstCreatedAt.getTime() + index * 1000)
          const ended = new Date(created.getTime() + 60_000)
          const phase = phaseOf(index)
          const terminal = phase !== ActionPhase.RUNNING
          runs.push({ ...runTemplate, name, created_at: created.toISOString(), updated_at: ended.toISOString() })
          roots.push({
            ...rootTemplate,
            run_name: name,
            phase: phaseColumn(phase),
            phase_number: phase,
            started_at: created.toISOString(),
            ended_at: terminal ? ended.toISOString() : null,
            duration_ms: terminal ? 60_000 : null,
            created_at: created.toISOString(),
            updated_at: ended.toISOString()
          })
        }
        for (let offset = 0; offset < runs.length; offset += rowsPerInsert) {
          const rows = yield* sql<{ id: number; name: string }>`INSERT INTO runs ${
            sql.insert(runs.slice(offset, offset + rowsPerInsert))
          } RETURNING id, name`
          for (const row of rows) ids.set(row.name, row.id)
        }
        for (const row of roots) row["run_id"] = ids.get(row["run_name"] as string)
        for (let offset = 0; offset < roots.length; offset += rowsPerInsert) {
          yield* sql`INSERT INTO actions ${sql.insert(roots.slice(offset, offset + rowsPerInsert))}`
        }
      }).pipe(sql.withTransaction)

    for (let from = options.from; from < options.to; from += runsPerTransaction) {
      yield* batch(from, Math.min(options.to, from + runsPerTransaction))
    }
  })

/** Seeds with a database client of its own, closed when done. */
export const seedWith = (client: Layer.Layer<SqlClient.SqlClient, unknown>, options: Parameters<typeof seedRuns>[0]) =>
  Effect.runPromise(seedRuns(options).pipe(Effect.provide(client), Effect.orDie))
