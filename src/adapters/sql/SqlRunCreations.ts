import type { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Either } from "effect"
import { type RunKey, runKeyText } from "../../domain/Ids.js"
import type { RunView, TaskRecord } from "../../domain/Records.js"
import type { Change } from "../../ports/ChangeFeed.js"
import type { makeNotice } from "./SqlChangeNotices.js"
import { requestRow } from "./SqlOutbox.js"
import type { jsonFromText } from "./SqlPayloads.js"
import { actionRow, runKeysMatching, runRow, selectViews, taskRow, viewOfRow, type ViewRow } from "./SqlRows.js"
import type { WriteGroup } from "./SqlWriteBatch.js"

// createRun: the run, its root action, its task and its enqueue request, for many runs in a few statements.

/** One call of createRun. */
export interface RunToCreate {
  readonly view: RunView
  readonly task: TaskRecord | undefined
  /** The trace the run's outbox request carries (read on the caller's fiber). */
  readonly traceparent: string | undefined
  /** The caller's `beforeCommit`, run once the run's row is written and before its other rows. */
  readonly hook: Effect.Effect<void, unknown>
}

/** Created; the name was taken (with the run that holds it); or the hook failed (its error is the answer). */
export type CreateOutcome =
  | { readonly _tag: "created" }
  | { readonly _tag: "exists"; readonly existing: RunView }
  | { readonly _tag: "refused"; readonly error: unknown }

type Notices = Effect.Effect.Success<typeof makeNotice>

interface InsertedRun {
  readonly id: number
  readonly project: string
  readonly domain: string
  readonly name: string
}

export const makeRunCreations = (sql: SqlClient.SqlClient, readJson: typeof jsonFromText, notices: Notices) => {
  /** The stored views of `keys`' runs, by run key text: one statement per 200 keys. */
  const viewsOf = (keys: ReadonlyArray<RunKey>): Effect.Effect<Map<string, RunView>, SqlError> =>
    Effect.map(
      Effect.forEach(runKeysMatching(sql, "r.", keys), (matching) =>
        sql<ViewRow>`${sql.literal(selectViews)} WHERE a.name = r.root_action_name AND (${matching})`),
      (parts) => new Map(parts.flat().map((row) => viewOfRow(row, readJson)).map((view) => [runKeyText(view.run.key), view]))
    )

  /**
   * Runs of different names together: one statement inserts every run (a name already taken inserts nothing, and
   * one more reads the runs that hold those names), then each inserted run's hook runs, and one statement removes
   * the runs whose hook failed, so that only their own row is undone; then one statement each for the root actions,
   * the tasks (each once) and the enqueue requests, and the notices. The same rows and answers as each alone.
   */
  const distinct = (inputs: ReadonlyArray<RunToCreate>): Effect.Effect<ReadonlyArray<CreateOutcome>, SqlError> =>
    Effect.gen(function*() {
      const inserted = yield* sql<InsertedRun>`INSERT INTO runs ${sql.insert(inputs.map((input) => runRow(input.view.run)))}
        ON CONFLICT (project, domain, name) DO NOTHING RETURNING id, project, domain, name`
      const ids = new Map(inserted.map((row) => [runKeyText(row), Number(row.id)]))
      const idOf = (input: RunToCreate) => ids.get(runKeyText(input.view.run.key))
      const taken = inputs.filter((input) => idOf(input) === undefined).map((input) => input.view.run.key)
      const holders = taken.length === 0 ? new Map<string, RunView>() : yield* viewsOf(taken)

      const outcomes: Array<CreateOutcome> = []
      const created: Array<{ readonly input: RunToCreate; readonly runId: number }> = []
      const undone: Array<number> = []
      for (const input of inputs) {
        const runId = idOf(input)
        if (runId === undefined) {
          const existing = holders.get(runKeyText(input.view.run.key))
          if (existing === undefined) return yield* Effect.dieMessage("a run name conflicted but the run cannot be read")
          outcomes.push({ _tag: "exists", existing })
          continue
        }
        const hooked = yield* Effect.either(input.hook)
        if (Either.isLeft(hooked)) {
          undone.push(runId)
          outcomes.push({ _tag: "refused", error: hooked.left })
          continue
        }
        created.push({ input, runId })
        outcomes.push({ _tag: "created" })
      }
      if (undone.length > 0) yield* sql`DELETE FROM runs WHERE id IN ${sql.in(undone)}`
      if (created.length === 0) return outcomes

      yield* sql`INSERT INTO actions ${sql.insert(created.map(({ input, runId }) => actionRow(input.view.root, runId)))}`
      const tasks = new Map<string, TaskRecord>()
      for (const { input } of created) {
        if (input.task === undefined) continue
        const { domain, name, project, version } = input.task.key
        tasks.set(JSON.stringify([project, domain, name, version]), input.task)
      }
      if (tasks.size > 0) {
        yield* sql`INSERT INTO tasks ${sql.insert(Array.from(tasks.values(), taskRow))}
          ON CONFLICT (project, domain, name, version) DO NOTHING`
      }
      yield* sql`INSERT INTO outbox ${
        sql.insert(created.map(({ input }) =>
          requestRow(input.view.root.key, "enqueue", undefined, input.view.run.createdAt, input.traceparent)
        ))
      }`
      yield* notices.within(sql, created.map(({ input }): Change => ({ action: input.view.root.key, kind: "created" })))
      return outcomes
    })

  /** Runs that arrive together: the first of each name together, then any other of a name already in the batch
   * alone, after them, as it would be written after the first (it finds it, or the name free again if the first's
   * hook failed). */
  const many = (inputs: ReadonlyArray<RunToCreate>): Effect.Effect<ReadonlyArray<CreateOutcome>, SqlError> => {
    const names = new Set<string>()
    const firsts: Array<number> = []
    const repeats: Array<number> = []
    inputs.forEach((input, i) => {
      const name = runKeyText(input.view.run.key)
      if (names.has(name)) repeats.push(i)
      else {
        names.add(name)
        firsts.push(i)
      }
    })
    if (repeats.length === 0) return distinct(inputs)
    return Effect.gen(function*() {
      const outcomes: Array<CreateOutcome> = []
      const together = yield* distinct(firsts.map((i) => inputs[i]!))
      firsts.forEach((i, j) => (outcomes[i] = together[j]!))
      for (const i of repeats) outcomes[i] = (yield* distinct([inputs[i]!]))[0]!
      return outcomes
    })
  }

  /** One run alone: the same statements as a batch of one. */
  const one = (input: RunToCreate): Effect.Effect<CreateOutcome, SqlError> =>
    Effect.map(distinct([input]), (outcomes) => outcomes[0]!)

  const group: WriteGroup<RunToCreate, CreateOutcome> = { one, many, atomic: false }

  return { group, viewsOf }
}
