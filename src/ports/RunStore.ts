import { Context, Data, type Effect, type Option } from "effect"
import type { ActionKey, RunKey, TaskKey } from "../domain/Ids.js"
import type { RebuildAttempt, StoredEvent } from "../domain/Events.js"
import type { ListQuery, Page, RunScope } from "../domain/ListQuery.js"
import type { ActionPhase } from "../domain/Phase.js"
import type { AbortRecord, ActionRecord, AttemptRecord, RunView, TaskRecord } from "../domain/Records.js"
import type { CatalogQuery } from "../domain/CatalogQuery.js"
import type { ProjectField, ProjectRecord } from "../domain/Project.js"
import type { TaskField, TaskName, TaskScope, VersionField } from "../domain/TaskCatalog.js"

/** The database cannot be reached (answered `Unavailable`; clients retry). */
export class StoreUnavailable extends Data.TaggedError("StoreUnavailable")<{ readonly reason: string }> {}

/** The run name is taken; nothing was written. Carries the stored run so the caller can compare requests. */
export class RunExists extends Data.TaggedError("RunExists")<{ readonly existing: RunView }> {}

/** The project id is stored already, or runs use it; nothing was written. */
export class ProjectExists extends Data.TaggedError("ProjectExists")<{ readonly id: string }> {}

/** The action (or run) a write refers to does not exist. */
export class ActionMissing extends Data.TaggedError("ActionMissing")<{ readonly key: ActionKey }> {}

export type UpdateOutcome =
  | { readonly _tag: "Missing" }
  | { readonly _tag: "Unchanged"; readonly action: ActionRecord }
  | { readonly _tag: "Updated"; readonly action: ActionRecord }

export type AbortOutcome =
  | { readonly _tag: "TargetMissing" }
  /** `aborted` lists every action that became ABORTED: the target first, then its descendants; empty when
   * the target was already terminal. */
  | { readonly _tag: "Aborted"; readonly aborted: ReadonlyArray<ActionKey> }

/** What `deleteFinishedRuns` did. */
export type DeleteOutcome =
  /** Another process is deleting runs at this moment (Postgres); nothing was deleted. */
  | { readonly _tag: "Busy" }
  /** The runs deleted (none when no run qualified). */
  | { readonly _tag: "Deleted"; readonly runs: ReadonlyArray<RunKey> }

export interface DeleteFinishedRunsInput<E = never> {
  /** Only runs whose root action is terminal and ended before this are deleted. */
  readonly endedBefore: Date
  /** At most this many runs, those that ended first. */
  readonly limit: number
  /** Runs in the transaction, with the runs about to be deleted (never with none), before it commits; when it
   * fails nothing is deleted and `deleteFinishedRuns` fails with its error. */
  readonly beforeCommit?: ((runs: ReadonlyArray<RunKey>) => Effect.Effect<void, E>) | undefined
}

/** What `createRun` writes, and what it runs before committing (see `createRun`). */
export interface CreateRunInput<E = never> {
  readonly view: RunView
  readonly task: TaskRecord | undefined
  readonly beforeCommit?: Effect.Effect<void, E> | undefined
}

/**
 * Runs, actions, attempts and tasks. Every method is atomic: it reads one consistent state and writes all or
 * nothing. A write is answered only once it is committed; writes that arrive together may be committed together,
 * each still succeeding or failing on its own, and two writes of one action apply in the order they arrived. A
 * failure to reach the database is `StoreUnavailable`, anything else unexpected is a defect.
 */
export class RunStore extends Context.Tag("runs/RunStore")<RunStore, {
  /** Writes the run, its root action and (when given) its task spec in one transaction; `RunExists` when the
   * (project, domain, name) is taken, in which case nothing is written. A task already recorded is kept.
   * `beforeCommit` runs in the transaction once the run is known to be new, before it is committed (and never
   * for a name that is taken): when it fails, nothing is written and `createRun` fails with its error. */
  readonly createRun: <E = never>(input: CreateRunInput<E>) => Effect.Effect<RunView, RunExists | StoreUnavailable | E>
  /** The newest run created with this `x-request-id` at or after `since`. */
  readonly findRunByRequestId: (
    requestId: string,
    since: Date
  ) => Effect.Effect<Option.Option<RunView>, StoreUnavailable>
  /** Creates `action` under its existing run (`ActionMissing` when the run is unknown); an action already
   * recorded is kept unchanged. True when it was created; then, in the same transaction, the attempts of
   * any events that arrived before it are rebuilt with `rebuild`. With `runCreatedAt`, a run of that key
   * created at another time counts as unknown too (the run it was meant for was deleted, and another one
   * created under its name since). */
  readonly recordAction: (
    action: ActionRecord,
    rebuild?: RebuildAttempt,
    runCreatedAt?: Date
  ) => Effect.Effect<boolean, ActionMissing | StoreUnavailable>
  /** Reads the action and its run's root phase, and writes what `apply` returns (undefined: nothing changes),
   * atomically: no other write of the action comes between the read `apply` saw and the write. `apply` may be
   * called more than once (when another write did come between), so it has no effects of its own. */
  readonly updateAction: (
    key: ActionKey,
    apply: (current: ActionRecord, context: { readonly rootPhase: ActionPhase }) => ActionRecord | undefined
  ) => Effect.Effect<UpdateOutcome, StoreUnavailable>
  /** Appends the events not stored yet (by key; the first one wins) and, in the same transaction, rebuilds
   * with `rebuild` every attempt they touch whose action exists. Returns the keys of the actions touched. */
  readonly recordEvents: (
    events: ReadonlyArray<StoredEvent>,
    rebuild: RebuildAttempt
  ) => Effect.Effect<ReadonlyArray<ActionKey>, StoreUnavailable>
  readonly getRun: (key: RunKey) => Effect.Effect<Option.Option<RunView>, StoreUnavailable>
  /** The runs of `keys` that exist, in no particular order, in one read (dispatch reads a round's runs so). */
  readonly getRuns: (keys: ReadonlyArray<RunKey>) => Effect.Effect<ReadonlyArray<RunView>, StoreUnavailable>
  readonly getAction: (key: ActionKey) => Effect.Effect<Option.Option<ActionRecord>, StoreUnavailable>
  readonly getTask: (key: TaskKey) => Effect.Effect<Option.Option<TaskRecord>, StoreUnavailable>
  /** A run and its root action's attempts, read together (one consistent read). */
  readonly getRunDetails: (
    key: RunKey
  ) => Effect.Effect<Option.Option<{ readonly view: RunView; readonly attempts: ReadonlyArray<AttemptRecord> }>, StoreUnavailable>
  /** An action and its attempts, read together (one consistent read). */
  readonly getActionDetails: (
    key: ActionKey
  ) => Effect.Effect<
    Option.Option<{ readonly action: ActionRecord; readonly attempts: ReadonlyArray<AttemptRecord> }>,
    StoreUnavailable
  >
  /** An action's attempts by attempt number, with their phase transitions and cluster events in order. */
  readonly listAttempts: (key: ActionKey) => Effect.Effect<ReadonlyArray<AttemptRecord>, StoreUnavailable>
  /** Replaces the given attempts of an action (matched by attempt number; others are kept). */
  readonly putAttempts: (
    key: ActionKey,
    attempts: ReadonlyArray<AttemptRecord>
  ) => Effect.Effect<void, ActionMissing | StoreUnavailable>
  /**
   * Runs in scope that pass every filter, in `query.order`, after `query.after`, at most `query.limit`, as
   * lists carry them (`listedView`: no specs).
   */
  readonly listRuns: (scope: RunScope, query: ListQuery) => Effect.Effect<Page<RunView>, StoreUnavailable>
  /** The actions of a run (the root included), as `listRuns` orders and pages them (`listedAction`: no specs). */
  readonly listActions: (run: RunKey, query: ListQuery) => Effect.Effect<Page<ActionRecord>, StoreUnavailable>
  /** Aborts the target and every non-terminal descendant (SPEC 5) at `now`, in one transaction: phase
   * ABORTED, the abort record, end time `now` (never before the start), and each one's latest attempt closed
   * as ABORTED if it was open. A terminal target is left alone. */
  readonly abort: (
    target: ActionKey,
    abort: AbortRecord,
    now: Date
  ) => Effect.Effect<AbortOutcome, StoreUnavailable>
  /**
   * Deletes, in one transaction, up to `limit` runs whose root action is terminal and ended before
   * `endedBefore` (those that ended first), with everything that belongs to them: their actions, attempts,
   * phase transitions, cluster events, events (those of actions never recorded too) and dispatch requests.
   * Tasks are kept: other runs use them. Runs that are not finished are never deleted; a run being written
   * at that moment may be left for a later call. One process at a time deletes (`Busy` for the others).
   */
  readonly deleteFinishedRuns: <E = never>(
    input: DeleteFinishedRunsInput<E>
  ) => Effect.Effect<DeleteOutcome, StoreUnavailable | E>
  /** Stores a new project; `ProjectExists` when its id is stored or named by a run. */
  readonly createProject: (project: ProjectRecord) => Effect.Effect<void, ProjectExists | StoreUnavailable>
  /** The stored project, else (`stored` false) the project of runs that name it, else none. */
  readonly getProject: (id: string) => Effect.Effect<Option.Option<ProjectRecord>, StoreUnavailable>
  /** Stores the project, replacing a stored one of its id. */
  readonly saveProject: (project: ProjectRecord) => Effect.Effect<void, StoreUnavailable>
  /** Stored projects and the projects of runs never stored, as `listRuns` filters, orders and pages. */
  readonly listProjects: (query: CatalogQuery<ProjectField>) => Effect.Effect<Page<ProjectRecord>, StoreUnavailable>
  /** Stores the task unless one of its key is stored; returns the one stored (this one, or the earlier one). */
  readonly deployTask: (task: TaskRecord) => Effect.Effect<TaskRecord, StoreUnavailable>
  /** The latest version (`isLaterVersion`) of each task in scope, then filtered, ordered and paged. */
  readonly listTasks: (
    scope: TaskScope,
    query: CatalogQuery<TaskField>
  ) => Effect.Effect<Page<TaskRecord>, StoreUnavailable>
  /** The versions of one task, filtered, ordered and paged. */
  readonly listTaskVersions: (
    name: TaskName,
    query: CatalogQuery<VersionField>
  ) => Effect.Effect<Page<TaskRecord>, StoreUnavailable>
}>() {}
