import { Context, Effect, Layer, Option, Stream } from "effect"
import type { Change } from "../ports/ChangeFeed.js"
import { RunStore } from "../ports/RunStore.js"
import { WatchHubs } from "../ports/WatchHubs.js"
import { type ActionTree, makeActionTree, parseTreeFilter, type TreeEntry, type TreeFilter, treeFilterKey } from "./ActionTree.js"
import { type ActionState, isSettled, makeClusterEventCursor } from "./ClusterEventCursor.js"
import { type InvalidArgument, NotFound } from "./Errors.js"
import { type ActionKey, actionKeyText, type RunKey, rootActionName, runKeyText } from "./Ids.js"
import type { Payload } from "./Payload.js"
import { type FieldValue, inRunScope, type ListFilter, type RunScope, type SortDirection, type SortKey } from "./ListQuery.js"
import type { FilterInput } from "./ListRequest.js"
import { ActionPhase } from "./Phase.js"
import type { ClusterEvent, RunView } from "./Records.js"
import { type ActionDetailsView, type RunDetailsView, Runs } from "./Runs.js"
import { latestAttempt } from "./Status.js"
import { buildGroups, type GroupsRequest, inGroupsScope, type RunSummary, summarize, type TaskGroupView } from "./TaskGroups.js"
import { latestOnly, latestPerPart, type WatchFailure, WatchSettings } from "./WatchRules.js"

/** Whose runs WatchRuns streams. */
export type RunTarget =
  | { readonly kind: "all" }
  | { readonly kind: "project"; readonly project: string; readonly domain: string }
  | { readonly kind: "task"; readonly project: string; readonly domain: string; readonly name: string; readonly version: string }
  /** Runs whose run spec names this cluster. */
  | { readonly kind: "cluster"; readonly cluster: string }

export interface GroupsMessage {
  readonly groups: ReadonlyArray<TaskGroupView>
  /** True on the first message (every group); false on updates (the changed groups). */
  readonly sentinel: boolean
}

/**
 * The Watch RPCs of RunService (SPEC 8): each subscribes to the change feed, then reads its snapshot, then
 * re-reads what each committed change touched. A client that falls behind gets the latest state per entity.
 * `runDetails`, `actionDetails` and `actions` are a watch hub's messages as they are (no stage that ends the
 * stream or emits on its own), so the one pulling them may wait outside them (`PullGate`).
 */
export class Watches extends Context.Tag("runs/Watches")<Watches, {
  /** The run's details at once and after each change; ends right after a message in which it is settled. */
  readonly runDetails: (key: RunKey) => Stream.Stream<RunDetailsView, NotFound | WatchFailure>
  /** The action's details at once and after each change; ends right after a message in which it is settled. */
  readonly actionDetails: (key: ActionKey) => Stream.Stream<ActionDetailsView, NotFound | WatchFailure>
  /** The newest 100 runs (possibly none), then one message per created or changed run. */
  readonly runs: (target: RunTarget) => Stream.Stream<ReadonlyArray<RunView>, WatchFailure>
  /** The run's action tree in messages of up to 1,000, then each change with its ancestors. */
  readonly actions: (
    run: RunKey,
    filters: ReadonlyArray<FilterInput>
  ) => Stream.Stream<ReadonlyArray<TreeEntry>, InvalidArgument | NotFound | WatchFailure>
  /** An attempt's cluster events so far, then new ones, each once (attempt 0: the latest attempt). */
  readonly clusterEvents: (key: ActionKey, attempt: number) => Stream.Stream<ReadonlyArray<ClusterEvent>, NotFound | WatchFailure>
  /** Every group (`sentinel`), then the groups each change touched. */
  readonly groups: (request: GroupsRequest) => Stream.Stream<GroupsMessage, WatchFailure>
}>() {}

const snapshotRuns = 100
/** Bound parameters in one read of changed actions: well under what either database takes in a statement. */
const readActionsAtOnce = 500
const messageActions = 1000

/** Tree messages as one: each action once, at its latest state, where it first came (so parents first). */
const mergeEntries = (messages: ReadonlyArray<ReadonlyArray<TreeEntry>>): ReadonlyArray<TreeEntry> => {
  if (messages.length === 1) return messages[0]!
  const byAction = new Map<string, TreeEntry>()
  for (const entries of messages) for (const entry of entries) byAction.set(entry.action.key.name, entry)
  return Array.from(byAction.values())
}
/** A run whose root changed, as WatchGroups watchers share it: undefined when it was deleted. */
interface ChangedRun {
  readonly key: string
  readonly view: RunView | undefined
  readonly error: Payload | undefined
}

/** WatchGroups keeps a summary of at most this many runs (the newest in its window). */
export const maxGroupRuns = 10_000

const orderBy = (direction: SortDirection): ReadonlyArray<SortKey> =>
  (["created_at", "project", "domain", "run_name", "name"] as const).map((field) => ({ field, direction }))

const sameRun = (a: RunKey, b: RunKey) => a.project === b.project && a.domain === b.domain && a.name === b.name

/** The run was deleted (retention): watches of it and of its actions end cleanly. */
const deleted = (change: Change) => change.kind === "deleted"

const scopeOf = (target: RunTarget): RunScope =>
  target.kind === "project"
    ? { kind: "project", project: target.project, domain: target.domain }
    : target.kind === "task"
    ? { kind: "taskId", project: target.project, domain: target.domain, name: target.name, version: target.version }
    : { kind: "all" }

const inTarget = (target: RunTarget, view: RunView): boolean =>
  target.kind === "cluster" ? view.run.cluster === target.cluster : inRunScope(scopeOf(target), view)

const inProject = (request: GroupsRequest, run: RunKey) =>
  request.project === undefined ||
  ((request.project.name === "" || run.project === request.project.name) &&
    (request.project.domain === "" || run.domain === request.project.domain))

const groupFilters = (request: GroupsRequest): ReadonlyArray<ListFilter> => [
  ...(request.project === undefined || request.project.name === ""
    ? []
    : [{ field: "project" as const, fn: "EQUAL" as const, values: [request.project.name] }]),
  ...(request.project === undefined || request.project.domain === ""
    ? []
    : [{ field: "domain" as const, fn: "EQUAL" as const, values: [request.project.domain] }]),
  ...(request.startDate === undefined
    ? []
    : [{ field: "created_at" as const, fn: "GREATER_THAN_OR_EQUAL" as const, values: [request.startDate.getTime()] }]),
  ...(request.endDate === undefined
    ? []
    : [{ field: "created_at" as const, fn: "LESS_THAN_OR_EQUAL" as const, values: [request.endDate.getTime()] }])
]

const chunks = <A>(items: ReadonlyArray<A>, size: number): ReadonlyArray<ReadonlyArray<A>> =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size))

export const make = Effect.gen(function*() {
  const store = yield* RunStore
  const runs = yield* Runs
  const settings = yield* WatchSettings
  const hubs = yield* WatchHubs

  /** Runs in `scope` passing `keep`, newest first, at most `limit`. */
  const newestRuns = (
    scope: RunScope,
    filters: ReadonlyArray<ListFilter>,
    keep: (view: RunView) => boolean,
    limit: number
  ) =>
    Effect.gen(function*() {
      const found: Array<RunView> = []
      let after: ReadonlyArray<FieldValue> | undefined
      do {
        const page = yield* store.listRuns(scope, { filters, order: orderBy("DESC"), limit: Math.min(limit, 500), after })
        for (const view of page.items) if (found.length < limit && keep(view)) found.push(view)
        after = page.next
      } while (after !== undefined && found.length < limit)
      return found
    })

  /** The entity's state at once, then again after each change of it (one read per change for all watchers),
   * ending right after a settled state. */
  const follow = <A extends ActionState, E>(
    key: string,
    action: ActionKey,
    read: Effect.Effect<A, E | NotFound>
  ) => {
    const text = actionKeyText(action)
    const once = Effect.map(read, (state) => [state])
    return hubs.watch(Effect.succeed({
      key,
      spec: {
        route: `action/${text}`,
        keyOf: (change: Change) =>
          actionKeyText(change.action) === text || (change.kind === "deleted" && sameRun(change.action.run, action.run))
            ? ""
            : undefined,
        endsWith: deleted,
        start: Effect.void,
        // Gone: its run was deleted, and the deletion's own change, which ends the watch, is on its way.
        update: () => Effect.catchIf(once, (error) => error instanceof NotFound, () => Effect.succeed([])),
        whole: true
      },
      first: once,
      pending: latestOnly<A>(),
      last: (state: A) => isSettled(state)
    }))
  }
  const followRunDetails = (key: RunKey) =>
    follow(`run-details/${runKeyText(key)}`, { run: key, name: rootActionName }, runs.runDetails(key))
  const followActionDetails = (key: ActionKey) =>
    follow(`action-details/${actionKeyText(key)}`, key, runs.actionDetails(key))

  const loadTree = (run: RunKey, filter: TreeFilter) =>
    Effect.gen(function*() {
      const tree = makeActionTree(filter)
      let after: ReadonlyArray<FieldValue> | undefined
      do {
        const page = yield* store.listActions(run, { filters: [], order: orderBy("ASC"), limit: messageActions, after })
        tree.load(page.items)
        after = page.next
      } while (after !== undefined)
      return tree
    })

  /** The named actions of a run as they are now, in the order named (one read per few hundred, not one each). */
  const readActions = (run: RunKey, names: ReadonlyArray<string>) =>
    Effect.map(
      Effect.forEach(chunks(names, readActionsAtOnce), (some) =>
        some.length === 1
          ? Effect.map(store.getAction({ run, name: some[0]! }), (found) => Option.toArray(found))
          : Effect.map(
            store.listActions(run, {
              filters: [{ field: "name", fn: "VALUE_IN", values: some }],
              // By name, the order of the unique key: the names are looked up, not the whole run scanned in
              // creation order.
              order: [{ field: "name", direction: "ASC" }],
              limit: some.length,
              after: undefined
            }),
            (page) => {
              const byName = new Map(page.items.map((action) => [action.key.name, action]))
              return some.flatMap((name) => byName.get(name) ?? [])
            }
          )),
      (found) => found.flat()
    )

  const failedRunError = (view: RunView) =>
    view.root.phase !== ActionPhase.FAILED
      ? Effect.succeed(undefined)
      : Effect.map(store.listAttempts(view.root.key), (attempts) => latestAttempt(attempts)?.errorInfo ?? view.root.errorInfo)

  return Watches.of({
    runDetails: (key) => followRunDetails(key),

    actionDetails: (key) => followActionDetails(key),

    runs: (target) =>
      // Watchers of the same target share one read of each changed run.
      hubs.watch(Effect.succeed({
        key: `runs/${JSON.stringify(target)}`,
        spec: {
          route: target.kind === "project" ? `project/${target.project}/${target.domain}` : "all",
          keyOf: (change: Change) =>
            change.action.name === rootActionName && change.kind !== "events" ? runKeyText(change.action.run) : undefined,
          start: Effect.void,
          // One read for the batch's runs, whatever their number.
          update: (batch: ReadonlyArray<Change>) =>
            Effect.map(store.getRuns(batch.map((change) => change.action.run)), (found) =>
              found.flatMap((view) => (inTarget(target, view) ? [[view]] : [])))
        },
        first: Effect.map(newestRuns(scopeOf(target), [], (view) => inTarget(target, view), snapshotRuns), (first) => [first]),
        pending: latestPerPart<RunView>((view) => runKeyText(view.run.key), {
          hold: settings.bufferSize,
          limit: settings.maxPending,
          max: snapshotRuns
        })
      })),

    actions: (run, filters) =>
      hubs.watch(Effect.gen(function*() {
        const filter = yield* parseTreeFilter(filters)
        if (Option.isNone(yield* store.getRun(run))) {
          return yield* new NotFound({ message: `run ${runKeyText(run)} not found` })
        }
        // Watchers with the same filters share one tree, kept by the hub: a watcher's snapshot is the tree as the
        // hub last updated it (no read of its own), and each batch of changes is one message for them all.
        let tree: ActionTree | undefined
        return {
          key: `actions/${runKeyText(run)}/${treeFilterKey(filter)}`,
          spec: {
            route: `run/${runKeyText(run)}`,
            // Nothing WatchActions sends comes from events.
            keyOf: (change: Change) =>
              sameRun(change.action.run, run) && change.kind !== "events" ? change.action.name : undefined,
            endsWith: deleted,
            start: Effect.map(loadTree(run, filter), (loaded) => {
              // What a watcher's snapshot shows, so that an action that stops matching is sent once as such.
              loaded.snapshot()
              tree = loaded
            }),
            update: (batch: ReadonlyArray<Change>) =>
              Effect.map(readActions(run, batch.map((change) => change.action.name)), (found) => {
                const changed: Array<ReadonlyArray<TreeEntry>> = []
                for (const action of found) {
                  if (tree === undefined) continue
                  const entries = tree.upsert(action)
                  if (entries.length > 0) changed.push(entries)
                }
                return changed.length === 0 ? [] : chunks(mergeEntries(changed), messageActions)
              }),
            snapshot: () => (tree === undefined ? [] : chunks(tree.snapshot(), messageActions))
          },
          pending: latestPerPart<TreeEntry>((entry) => entry.action.key.name, {
            hold: settings.bufferSize,
            limit: settings.maxPending,
            max: messageActions
          })
        }
      })),

    clusterEvents: (key, attempt) =>
      Stream.suspend(() => {
        const cursor = makeClusterEventCursor(attempt)
        return followActionDetails(key).pipe(
          Stream.map((state) => cursor(state)),
          Stream.takeUntil((step) => step.done),
          Stream.map((step) => step.events),
          Stream.filter((events) => events.length > 0)
        )
      }),

    groups: (request) => {
      const read = (view: RunView) =>
        Effect.map(failedRunError(view), (error): ChangedRun => ({ key: runKeyText(view.run.key), view, error }))
      const firstRuns = Effect.flatMap(
        newestRuns({ kind: "all" }, groupFilters(request), (view) => inGroupsScope(request, view), maxGroupRuns),
        (views) => Effect.forEach(views, (view) => read(view))
      )
      /** Applies changed runs to a watcher's summaries; the groups they touched. */
      const apply = (summaries: Map<string, RunSummary>, runs: ReadonlyArray<ChangedRun>) => {
        const touched = new Set<string>()
        for (const run of runs) {
          const before = summaries.get(run.key)
          if (run.view === undefined) {
            // Deleted: its group counts it no more.
            if (before !== undefined) touched.add(before.group)
            summaries.delete(run.key)
          } else if (inGroupsScope(request, run.view)) {
            const after = summarize(run.view, run.error, request)
            summaries.set(run.key, after)
            if (before !== undefined) touched.add(before.group)
            touched.add(after.group)
          }
        }
        return touched
      }
      const firstMessage = (summaries: ReadonlyMap<string, RunSummary>): GroupsMessage => ({
        groups: buildGroups(summaries.values(), request),
        sentinel: true
      })
      // With an end date the answer is one message: nothing to follow.
      if (request.endDate !== undefined) {
        return Stream.fromEffect(Effect.map(firstRuns, (runs) => {
          const summaries = new Map<string, RunSummary>()
          apply(summaries, runs)
          return firstMessage(summaries)
        }))
      }
      // Watchers of one project (and domain) share one read of each changed run; each keeps its own window.
      const project = request.project?.name ?? ""
      const domain = request.project?.domain ?? ""
      const changedRuns = hubs.watch(Effect.succeed({
        key: `groups/${project}/${domain}`,
        spec: {
          route: project !== "" && domain !== "" ? `project/${project}/${domain}` : "all",
          keyOf: (change: Change) =>
            change.action.name === rootActionName && change.kind !== "events" && inProject(request, change.action.run)
              ? runKeyText(change.action.run)
              : undefined,
          start: Effect.void,
          update: (batch: ReadonlyArray<Change>) =>
            Effect.map(
              Effect.forEach(batch, (change) =>
                Effect.flatMap(store.getRun(change.action.run), Option.match({
                  onNone: (): Effect.Effect<ChangedRun> =>
                    Effect.succeed({ key: runKeyText(change.action.run), view: undefined, error: undefined }),
                  onSome: (view) => read(view)
                }))),
              (changed) => (changed.length === 0 ? [] : [changed])
            )
        },
        first: Effect.map(firstRuns, (runs) => [runs]),
        // A slow client gets each changed run once, at its latest.
        pending: latestPerPart<ChangedRun>((run) => run.key, {
          hold: settings.bufferSize,
          limit: settings.maxPending,
          max: maxGroupRuns
        })
      }))
      // The first message is the watcher's window; each later one changes the groups of the runs in it.
      return Stream.suspend(() => {
        const summaries = new Map<string, RunSummary>()
        let started = false
        return changedRuns.pipe(
          Stream.map((runs): GroupsMessage => {
            const touched = apply(summaries, runs)
            if (!started) {
              started = true
              return firstMessage(summaries)
            }
            const changed = Array.from(summaries.values()).filter((run) => touched.has(run.group))
            return { groups: buildGroups(changed, { direction: request.direction, limit: 0 }), sentinel: false }
          }),
          Stream.filter((message) => message.sentinel || message.groups.length > 0)
        )
      })
    }
  })
})

/** Needs RunStore, Runs, WatchHubs and WatchSettings. */
export const layer = Layer.scoped(Watches, make)
