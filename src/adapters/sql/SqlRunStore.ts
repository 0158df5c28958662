import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Effect, Layer, Option, type Scope } from "effect"
import { abortAction, abortAttempt, actionsToAbort } from "../../domain/Abort.js"
import type { ActionKey, RunKey, TaskKey } from "../../domain/Ids.js"
import { cursorOf, type Page } from "../../domain/ListQuery.js"
import type { ActionPhase } from "../../domain/Phase.js"
import type { AttemptRecord, RunView } from "../../domain/Records.js"
import { ActionMissing, type CreateRunInput, RunExists, RunStore, type StoreUnavailable } from "../../ports/RunStore.js"
import { currentTraceparent } from "../../ports/TraceParent.js"
import { withSpanWhenTraced } from "../../ports/Spans.js"
import { makeActionRecords } from "./SqlActionRecords.js"
import { makeActionUpdates } from "./SqlActionUpdates.js"
import { makeAttempts } from "./SqlAttempts.js"
import { makeCatalog } from "./SqlCatalog.js"
import { makeNotice } from "./SqlChangeNotices.js"
import { makeEvents } from "./SqlEvents.js"
import { makeListings } from "./SqlListQuery.js"
import { deleteFinishedRuns as deleteFinishedRunsBody } from "./SqlRunDeletion.js"
import { insertRequest } from "./SqlOutbox.js"
import { makeRunCreations } from "./SqlRunCreations.js"
import { jsonFromText } from "./SqlPayloads.js"
import { preparedMarker } from "./SqlPrepared.js"
import {
  actionColumnList,
  actionOfRow,
  type ActionRow,
  actionStateRow,
  iso,
  selectViews,
  taskColumnList,
  taskOfRow,
  type TaskRow,
  viewColumnList,
  viewOfRow,
  type ViewRow
} from "./SqlRows.js"
import { refail, retryingConflicts } from "./SqlStoreErrors.js"
import { makeWriteBatch } from "./SqlWriteBatch.js"
import { timedTransaction } from "./SqlTransactionTiming.js"

/**
 * One store for SQLite and Postgres: writes are committed in batches (group commit, see SqlWriteBatch; a batch's
 * CreateRuns and RecordActions, and on Postgres its action updates, are written together, see SqlRunCreations,
 * SqlActionRecords and SqlActionUpdates), but for RecordActionEvents on Postgres, which measured faster alone;
 * every read is one statement
 * (consistent on its own), every value a bound parameter. A write fails with its own error only before it wrote
 * anything, or after undoing what it wrote, as a batch requires.
 */
export const make: Effect.Effect<RunStore["Type"], never, SqlClient.SqlClient | Scope.Scope> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  // One batch at a time on Postgres too: two or four in flight were no faster here, and two batches could deadlock
  // on each other's rows and would no longer keep arrival order for writes of one action.
  const batch = yield* makeWriteBatch(sql, { inFlight: 1, maxWrites: 128 })
  // Both databases hand JSON columns over as text (see SqlClients).
  const readJson = jsonFromText
  const attempts = makeAttempts(sql, readJson)
  const listings = makeListings(sql)
  const events = makeEvents(sql, readJson, attempts)
  const notices = yield* makeNotice
  const notice = notices.within
  // Marks a statement whose text never varies for Postgres to prepare once per connection (see SqlPrepared).
  // Such statements name their columns, so a column added by a later migration leaves their result type as it was.
  const prepared = sql.literal(preparedMarker)
  // Not FOR UPDATE: that would also block the foreign-key checks of attempt inserts under an event batch's
  // lock, and an abort and a batch would deadlock.
  const lockRows = sql.literal(sql.onDialectOrElse({ pg: () => "FOR NO KEY UPDATE", orElse: () => "" }))
  // The lock the action insert's foreign-key check takes on its run anyway, taken when the run is read: a run that
  // a retention deletion is removing is then waited for and read as gone (ActionMissing), not a key violation.
  const keepRun = sql.literal(sql.onDialectOrElse({ pg: () => "FOR KEY SHARE", orElse: () => "" }))

  // No stack trace per call: nothing reads one (no exporter), and taking it is a cost on every store call.
  const span = (name: string) => withSpanWhenTraced(`SqlRunStore.${name}`, { captureStackTrace: false })

  /** A write, committed with the others of its batch. */
  const transaction = <A, E>(
    name: string,
    body: Effect.Effect<A, E | SqlError>
  ): Effect.Effect<A, Exclude<E, SqlError> | StoreUnavailable> =>
    refail(batch.run(body)).pipe(span(name))

  /** A write in a transaction of its own, outside the batches; run again (a few times) when it lost a deadlock
   * to a batch, which takes its writes' locks one write after the other and not in one order. */
  const alone = <A, E>(
    name: string,
    body: Effect.Effect<A, E | SqlError>
  ): Effect.Effect<A, Exclude<E, SqlError> | StoreUnavailable> =>
    refail(retryingConflicts(timedTransaction(sql.withTransaction(body)))).pipe(span(name))

  /** A statement that reads and no more: one statement is consistent on its own, so no transaction. */
  const read = <A, E>(
    name: string,
    body: Effect.Effect<A, E | SqlError>
  ): Effect.Effect<A, Exclude<E, SqlError> | StoreUnavailable> =>
    refail(body).pipe(span(name))

  const viewRowOf = (key: RunKey) =>
    sql<ViewRow>`${prepared} ${sql.literal(selectViews)} WHERE r.project = ${key.project} AND r.domain = ${key.domain}
      AND r.name = ${key.name} AND a.name = r.root_action_name`.pipe(Effect.map((rows) => Option.fromNullable(rows[0])))

  const readView = (key: RunKey) => Effect.map(viewRowOf(key), Option.map((row) => viewOfRow(row, readJson)))

  const actionRowOf = (key: ActionKey) =>
    sql<ActionRow>`${prepared} SELECT ${sql.literal(actionColumnList)} FROM actions a
      WHERE a.project = ${key.run.project} AND a.domain = ${key.run.domain} AND a.run_name = ${key.run.name}
      AND a.name = ${key.name}`.pipe(
      Effect.map((rows) => Option.fromNullable(rows[0]))
    )

  /** `beforeCommit`, not run again once it succeeded (when a broken batch runs the write again alone). */
  const once = <E>(effect: Effect.Effect<void, E> | undefined): Effect.Effect<void, E> => {
    let succeeded = false
    return effect === undefined
      ? Effect.void
      : Effect.suspend(() => (succeeded ? Effect.void : Effect.tap(effect, () => (succeeded = true))))
  }

  const creations = makeRunCreations(sql, readJson, notices)

  // CreateRuns that arrive together: a few statements for all of them (see SqlRunCreations). The trace an outbox
  // row carries is read on the caller's fiber, before the write: a batch runs it on its own.
  const createRun: RunStore["Type"]["createRun"] = <E>({ beforeCommit, task, view }: CreateRunInput<E>) =>
    Effect.flatMap(currentTraceparent, (traceparent) =>
      refail(batch.runIn(creations.group, { view, task, traceparent, hook: once(beforeCommit) })).pipe(
        Effect.flatMap((outcome): Effect.Effect<RunView, RunExists | E> =>
          outcome._tag === "created"
            ? Effect.succeed(view)
            : outcome._tag === "exists"
            ? Effect.fail(new RunExists({ existing: outcome.existing }))
            : Effect.fail(outcome.error as E)
        ),
        span("createRun")
      ))

  const findRunByRequestId: RunStore["Type"]["findRunByRequestId"] = (requestId, since) =>
    read(
      "findRunByRequestId",
      sql<ViewRow>`${sql.literal(selectViews)} WHERE r.request_id = ${requestId} AND r.created_at >= ${iso(since)}
        AND a.name = r.root_action_name ORDER BY r.created_at DESC LIMIT 1`.pipe(
        Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), (row) => viewOfRow(row, readJson)))
      )
    )

  const records = makeActionRecords(sql, events, notices, keepRun)
  // A batch's records together: a few statements for all of them (see SqlActionRecords).
  const recordAction: RunStore["Type"]["recordAction"] = (action, rebuild, runCreatedAt) =>
    refail(batch.runIn(records.group, { action, rebuild, runCreatedAt })).pipe(
      Effect.flatMap((outcome) =>
        outcome === "missing" ? Effect.fail(new ActionMissing({ key: action.key })) : Effect.succeed(outcome === "created")
      ),
      span("recordAction")
    )

  const updates = makeActionUpdates(sql, readJson, notices)
  const updateAction: RunStore["Type"]["updateAction"] = sql.onDialectOrElse({
    // A batch's updates together: on Postgres each statement of a batch waits for the one before it.
    pg: () => (key, apply) => refail(batch.runIn(updates.group, { key, apply })).pipe(span("updateAction")),
    orElse: () => (key, apply) => transaction("updateAction", updates.one(key, apply))
  })

  // Postgres: an event write is ten statements or so; in a batch they run one after the other on one connection,
  // where alone they run on the pool's connections at once, which the bench found faster (see bench/HISTORY.md).
  const eventsWrite = sql.onDialectOrElse({ pg: () => alone, orElse: () => transaction })

  const recordEvents: RunStore["Type"]["recordEvents"] = (list, rebuild) =>
    eventsWrite(
      "recordEvents",
      Effect.flatMap(Clock.currentTimeMillis, (now) => events.record(list, rebuild, new Date(now))).pipe(
        Effect.tap((touched) => notice(sql, touched.map((action) => ({ action, kind: "events" as const }))))
      )
    )

  const getRun: RunStore["Type"]["getRun"] = (key) => read("getRun", readView(key))

  // A round of dispatch reads its runs so; see SqlRunCreations for the statement.
  const getRuns: RunStore["Type"]["getRuns"] = (keys) =>
    read("getRuns", Effect.map(creations.viewsOf(keys), (views) => Array.from(views.values())))

  const getAction: RunStore["Type"]["getAction"] = (key) =>
    read("getAction", Effect.map(actionRowOf(key), (row) => Option.map(row, (r) => actionOfRow(r, readJson))))

  const getTask: RunStore["Type"]["getTask"] = (key: TaskKey) =>
    read(
      "getTask",
      sql<TaskRow>`${prepared} SELECT ${sql.literal(taskColumnList)} FROM tasks WHERE project = ${key.project}
        AND domain = ${key.domain} AND name = ${key.name} AND version = ${key.version}`.pipe(
        Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), (row) => taskOfRow(row, readJson)))
      )
    )

  /** A row read with its action's attempts as `attempt_list` (`attempts.column` of the action `a`): one statement. */
  type WithAttempts<Row> = Row & { readonly attempt_list: unknown }

  const withAttempts = <Row, A>(
    rows: Effect.Effect<ReadonlyArray<WithAttempts<Row>>, SqlError>,
    build: (found: Row, attempts: ReadonlyArray<AttemptRecord>) => A
  ) =>
    Effect.map(rows, ([row]) =>
      row === undefined ? Option.none() : Option.some(build(row, attempts.parse(row.attempt_list))))

  const getRunDetails: RunStore["Type"]["getRunDetails"] = (key) =>
    read(
      "getRunDetails",
      withAttempts(
        sql<WithAttempts<ViewRow>>`${prepared} SELECT ${sql.literal(viewColumnList)},
          ${attempts.column("a")} AS attempt_list FROM actions a JOIN runs r ON r.id = a.run_id
          WHERE r.project = ${key.project} AND r.domain = ${key.domain} AND r.name = ${key.name}
          AND a.name = r.root_action_name`,
        (row, list) => ({ view: viewOfRow(row, readJson), attempts: list })
      )
    )

  const actionWithAttempts = (key: ActionKey) =>
    sql<WithAttempts<ActionRow>>`${prepared} SELECT ${sql.literal(actionColumnList)},
      ${attempts.column("a")} AS attempt_list FROM actions a
      WHERE a.project = ${key.run.project} AND a.domain = ${key.run.domain} AND a.run_name = ${key.run.name}
      AND a.name = ${key.name}`

  const getActionDetails: RunStore["Type"]["getActionDetails"] = (key) =>
    read(
      "getActionDetails",
      withAttempts(actionWithAttempts(key), (row, list) => ({ action: actionOfRow(row, readJson), attempts: list }))
    )

  const listAttempts: RunStore["Type"]["listAttempts"] = (key) =>
    read(
      "listAttempts",
      Effect.map(withAttempts(actionWithAttempts(key), (_, list) => list), Option.getOrElse(() => []))
    )

  const putAttempts: RunStore["Type"]["putAttempts"] = (key, list) =>
    transaction(
      "putAttempts",
      Effect.gen(function*() {
        yield* events.lock([key])
        const row = yield* actionRowOf(key)
        if (Option.isNone(row)) return yield* new ActionMissing({ key })
        const now = new Date(yield* Clock.currentTimeMillis)
        yield* attempts.writeAll(list.map((attempt) => ({ actionId: row.value.id, attempt })), now)
      })
    )

  const page = <A>(rows: ReadonlyArray<A>, limit: number, cursor: (item: A) => Page<A>["next"]): Page<A> => {
    const items = rows.slice(0, limit)
    const last = items[items.length - 1]
    return { items, next: rows.length > limit && last !== undefined ? cursor(last) : undefined }
  }

  const listRuns: RunStore["Type"]["listRuns"] = (scope, query) =>
    read(
      "listRuns",
      Effect.map(listings.runs(scope, query), (rows) =>
        page(rows.map((row) => viewOfRow(row, readJson)), query.limit, (view) => cursorOf(query.order, view.root, view.run)))
    )

  const listActions: RunStore["Type"]["listActions"] = (run, query) =>
    read(
      "listActions",
      Effect.map(listings.actions(run, query), (rows) =>
        page(rows.map((row) => actionOfRow(row, readJson)), query.limit, (action) => cursorOf(query.order, action)))
    )

  const abort: RunStore["Type"]["abort"] = (target, record, now) =>
    Effect.flatMap(currentTraceparent, (traceparent) => transaction(
      "abort",
      Effect.gen(function*() {
        const tree = yield* sql<{ name: string; parent_action_name: string | null; phase_number: number }>`
          SELECT name, parent_action_name, phase_number FROM actions WHERE project = ${target.run.project}
          AND domain = ${target.run.domain} AND run_name = ${target.run.name} ${lockRows}`
        if (!tree.some((row) => row.name === target.name)) return { _tag: "TargetMissing" } as const
        const names = actionsToAbort(
          tree.map((row) => ({
            key: { run: target.run, name: row.name },
            parent: row.parent_action_name ?? undefined,
            phase: row.phase_number as ActionPhase
          })),
          target.name
        )
        yield* events.lock(names.map((name) => ({ run: target.run, name })))
        for (const name of names) {
          const row = Option.getOrThrow(yield* actionRowOf({ run: target.run, name }))
          const aborted = abortAction(actionOfRow(row, readJson), record, now)
          yield* sql`UPDATE actions SET ${sql.update(actionStateRow(aborted))} WHERE id = ${row.id}`
          const latest = (yield* attempts.read(row.id)).at(-1)
          if (latest !== undefined) {
            const closed = abortAttempt(latest, now)
            if (closed !== latest) yield* attempts.write(row.id, closed, now)
          }
        }
        if (names.length > 0) yield* insertRequest(sql, target, "abort", record.reason, now, traceparent)
        const aborted = names.map((name) => ({ run: target.run, name }))
        yield* notice(sql, aborted.map((action) => ({ action, kind: "updated" as const })))
        return { _tag: "Aborted", aborted } as const
      })
    ))

  // Not in the write batches: a deletion takes one advisory lock on Postgres and should not make the writes that
  // share a batch with it wait for it.
  const deleteFinishedRuns: RunStore["Type"]["deleteFinishedRuns"] = (input) =>
    alone("deleteFinishedRuns", deleteFinishedRunsBody(sql, notice, input))

  return RunStore.of({
    createRun,
    deleteFinishedRuns,
    findRunByRequestId,
    recordAction,
    updateAction,
    recordEvents,
    getRun,
    getRuns,
    getAction,
    getTask,
    getRunDetails,
    getActionDetails,
    listAttempts,
    putAttempts,
    listRuns,
    listActions,
    abort,
    ...makeCatalog(sql, readJson, transaction)
  })
})

export const layer: Layer.Layer<RunStore, never, SqlClient.SqlClient> = Layer.scoped(RunStore, make)
