import { Context, Effect, Layer, Option } from "effect"
import { abortAction, abortAttempt, actionsToAbort } from "../../domain/Abort.js"
import type { StoredEvent } from "../../domain/Events.js"
import { type ActionKey, actionKeyText, type RunKey, runKeyText } from "../../domain/Ids.js"
import { isTerminal } from "../../domain/Phase.js"
import { inRunScope } from "../../domain/ListQuery.js"
import { type ActionRecord, type AttemptRecord, listedAction, listedView, type RunRecord, type RunView, type TaskRecord } from "../../domain/Records.js"
import { Outbox } from "../../ports/Outbox.js"
import { currentTraceparent } from "../../ports/TraceParent.js"
import {
  ActionMissing,
  type CreateRunInput,
  type DeleteFinishedRunsInput,
  type DeleteOutcome,
  RunExists,
  RunStore
} from "../../ports/RunStore.js"
import { makeOutbox, makeTable, type MemoryOutboxTable } from "./MemoryOutbox.js"
import { type ListRow, pageOf } from "./MemoryListQuery.js"
import { makeCatalog, taskKeyText } from "./MemoryCatalog.js"
const eventKeyText = (event: StoredEvent) => `${event.attempt}/${event.phase}/${event.version}`

/** The RunStore in memory: plain maps, every method atomic under one permit; dispatch requests go to `outbox`. */
export const makeWithOutbox = (outbox: MemoryOutboxTable): Effect.Effect<RunStore["Type"]> => Effect.gen(function*() {
  const lock = yield* Effect.makeSemaphore(1)
  const atomic = <A, E>(effect: Effect.Effect<A, E>) => lock.withPermits(1)(effect)
  const runs = new Map<string, RunRecord>()
  /** By run key text, then action name, in creation order. */
  const actions = new Map<string, Map<string, ActionRecord>>()
  /** By action key text, then attempt number. */
  const attempts = new Map<string, Map<number, AttemptRecord>>()
  const tasks = new Map<string, TaskRecord>()
  /** By action key text (the action may not exist yet), then attempt number, then event key text. */
  const events = new Map<string, Map<number, Map<string, StoredEvent>>>()

  const viewOf = (run: RunRecord): RunView | undefined => {
    const root = actions.get(runKeyText(run.key))?.get(run.rootActionName)
    return root === undefined ? undefined : { run, root }
  }
  const views = () => Array.from(runs.values()).flatMap((run) => viewOf(run) ?? [])
  const getView = (key: RunKey) => {
    const run = runs.get(runKeyText(key))
    return run === undefined ? undefined : viewOf(run)
  }
  const sortedAttempts = (key: ActionKey) =>
    Array.from(attempts.get(actionKeyText(key))?.values() ?? []).sort((a, b) => a.attempt - b.attempt)

  const actionOf = (key: ActionKey) => actions.get(runKeyText(key.run))?.get(key.name)
  const eventsOf = (text: string, attempt: number) => Array.from(events.get(text)?.get(attempt)?.values() ?? [])
  const putEvent = (event: StoredEvent) => {
    const text = actionKeyText(event.key)
    const byAttempt = events.get(text) ?? new Map<number, Map<string, StoredEvent>>()
    const ofAttempt = byAttempt.get(event.attempt) ?? new Map<string, StoredEvent>()
    byAttempt.set(event.attempt, ofAttempt.set(eventKeyText(event), event))
    events.set(text, byAttempt)
  }
  const putAttempts = (text: string, given: ReadonlyArray<AttemptRecord>) => {
    if (given.length === 0) return
    const byNumber = attempts.get(text) ?? new Map<number, AttemptRecord>()
    for (const attempt of given) byNumber.set(attempt.attempt, attempt)
    attempts.set(text, byNumber)
  }

  const removeRun = (key: RunKey) => {
    const text = runKeyText(key)
    for (const name of actions.get(text)?.keys() ?? []) attempts.delete(actionKeyText({ run: key, name }))
    actions.delete(text)
    runs.delete(text)
    // Events may belong to actions never recorded: matched by their run, not by the run's actions.
    for (const [actionText, byAttempt] of events) {
      const event = byAttempt.values().next().value?.values().next().value
      if (event !== undefined && runKeyText(event.key.run) === text) events.delete(actionText)
    }
    outbox.removeRun(key)
  }

  const store: RunStore["Type"] = {
    createRun: <E>({ beforeCommit, task, view }: CreateRunInput<E>) =>
      Effect.flatMap(currentTraceparent, (traceparent) => atomic(Effect.suspend((): Effect.Effect<RunView, RunExists | E> => {
        const existing = getView(view.run.key)
        if (existing !== undefined) return Effect.fail(new RunExists({ existing }))
        return Effect.zipRight(
          beforeCommit ?? Effect.void,
          Effect.sync(() => {
            const text = runKeyText(view.run.key)
            runs.set(text, view.run)
            actions.set(text, new Map([[view.root.key.name, view.root]]))
            if (task !== undefined && !tasks.has(taskKeyText(task.key))) tasks.set(taskKeyText(task.key), task)
            outbox.append(view.root.key, "enqueue", undefined, view.run.createdAt, traceparent)
            return view
          })
        )
      }))),
    findRunByRequestId: (requestId, since) =>
      atomic(Effect.sync(() =>
        Option.fromNullable(
          views()
            .filter((view) =>
              view.run.requestId === requestId && view.run.createdAt.getTime() >= since.getTime()
            )
            .reduce<RunView | undefined>(
              (newest, view) =>
                newest === undefined || view.run.createdAt.getTime() >= newest.run.createdAt.getTime()
                  ? view
                  : newest,
              undefined
            )
        )
      )),
    getRun: (key) => atomic(Effect.sync(() => Option.fromNullable(getView(key)))),
    getRuns: (keys) =>
      atomic(Effect.sync(() => {
        const found = new Map<string, RunView>()
        for (const key of keys) {
          const view = getView(key)
          if (view !== undefined) found.set(runKeyText(key), view)
        }
        return Array.from(found.values())
      })),
    getAction: (key) => atomic(Effect.sync(() => Option.fromNullable(actionOf(key)))),
    getTask: (key) => atomic(Effect.sync(() => Option.fromNullable(tasks.get(taskKeyText(key))))),
    getRunDetails: (key) =>
      atomic(Effect.sync(() =>
        Option.map(Option.fromNullable(getView(key)), (view) => ({ view, attempts: sortedAttempts(view.root.key) }))
      )),
    getActionDetails: (key) =>
      atomic(Effect.sync(() =>
        Option.map(Option.fromNullable(actionOf(key)), (action) => ({ action, attempts: sortedAttempts(key) }))
      )),
    listAttempts: (key) => atomic(Effect.sync(() => sortedAttempts(key))),
    putAttempts: (key, given) =>
      atomic(Effect.suspend(() => {
        if (actionOf(key) === undefined) return Effect.fail(new ActionMissing({ key }))
        putAttempts(actionKeyText(key), given)
        return Effect.void
      })),
    listRuns: (scope, query) =>
      atomic(Effect.sync(() =>
        pageOf(
          views()
            .filter((view) => inRunScope(scope, view))
            .map((view): ListRow<RunView> => ({ item: listedView(view), action: view.root, run: view.run })),
          query
        )
      )),
    listActions: (run, query) =>
      atomic(Effect.sync(() =>
        pageOf(
          Array.from(actions.get(runKeyText(run))?.values() ?? []).map((action): ListRow<ActionRecord> => ({
            item: listedAction(action),
            action,
            run: undefined
          })),
          query
        )
      )),
    abort: (target, abort, now) =>
      Effect.flatMap(currentTraceparent, (traceparent) => atomic(Effect.sync(() => {
        const ofRun = actions.get(runKeyText(target.run))
        if (ofRun?.has(target.name) !== true) return { _tag: "TargetMissing" as const }
        const names = actionsToAbort(Array.from(ofRun.values()), target.name)
        for (const name of names) {
          const key = { run: target.run, name }
          ofRun.set(name, abortAction(ofRun.get(name)!, abort, now))
          const latest = sortedAttempts(key).at(-1)
          if (latest !== undefined) attempts.get(actionKeyText(key))!.set(latest.attempt, abortAttempt(latest, now))
        }
        if (names.length > 0) outbox.append(target, "abort", abort.reason, now, traceparent)
        return { _tag: "Aborted" as const, aborted: names.map((name) => ({ run: target.run, name })) }
      }))),
    ...makeCatalog({ atomic, runs: () => runs.values(), tasks }),
    // Each write computes everything first (`rebuild` may throw) and then changes the maps, so a failure
    // leaves nothing half done.
    recordAction: (action, rebuild, runCreatedAt) =>
      atomic(Effect.suspend(() => {
        const ofRun = actions.get(runKeyText(action.key.run))
        const run = runs.get(runKeyText(action.key.run))
        if (ofRun === undefined || run === undefined) return Effect.fail(new ActionMissing({ key: action.key }))
        if (runCreatedAt !== undefined && run.createdAt.getTime() !== runCreatedAt.getTime()) {
          return Effect.fail(new ActionMissing({ key: action.key }))
        }
        if (ofRun.has(action.key.name)) return Effect.succeed(false)
        const text = actionKeyText(action.key)
        const rebuilt = rebuild === undefined
          ? []
          : Array.from(events.get(text)?.keys() ?? [], (attempt) => rebuild(eventsOf(text, attempt)))
        ofRun.set(action.key.name, action)
        putAttempts(text, rebuilt)
        return Effect.succeed(true)
      })),
    updateAction: (key, apply) =>
      atomic(Effect.sync(() => {
        const current = actionOf(key)
        if (current === undefined) return { _tag: "Missing" } as const
        const run = runs.get(runKeyText(key.run))
        const root = run === undefined ? undefined : actionOf({ run: key.run, name: run.rootActionName })
        const next = apply(current, { rootPhase: (root ?? current).phase })
        if (next === undefined) return { _tag: "Unchanged", action: current } as const
        const stored = { ...next, key: current.key }
        actions.get(runKeyText(key.run))!.set(key.name, stored)
        return { _tag: "Updated", action: stored } as const
      })),
    recordEvents: (list, rebuild) =>
      atomic(Effect.sync(() => {
        const fresh = new Map<string, StoredEvent>()
        const touched = new Map<string, { readonly key: ActionKey; readonly attempts: Set<number> }>()
        for (const event of list) {
          const text = actionKeyText(event.key)
          const id = `${text}/${eventKeyText(event)}`
          if (!fresh.has(id) && events.get(text)?.get(event.attempt)?.has(eventKeyText(event)) !== true) {
            fresh.set(id, event)
          }
          const entry = touched.get(text) ?? { key: event.key, attempts: new Set<number>() }
          entry.attempts.add(event.attempt)
          touched.set(text, entry)
        }
        const rebuilt = Array.from(touched).filter(([, entry]) => actionOf(entry.key) !== undefined).map(
          ([text, entry]) => ({
            text,
            attempts: Array.from(entry.attempts, (attempt) =>
              rebuild([
                ...eventsOf(text, attempt),
                ...Array.from(fresh.values()).filter((event) =>
                  event.attempt === attempt && actionKeyText(event.key) === text
                )
              ]))
          })
        )
        for (const event of fresh.values()) putEvent(event)
        for (const { attempts: given, text } of rebuilt) putAttempts(text, given)
        return Array.from(touched.values(), (entry) => entry.key)
      })),
    deleteFinishedRuns: <E>({ beforeCommit, endedBefore, limit }: DeleteFinishedRunsInput<E>) =>
      atomic(Effect.suspend((): Effect.Effect<DeleteOutcome, E> => {
        const due = views()
          .filter((view) =>
            isTerminal(view.root.phase) && view.root.endedAt !== undefined &&
            view.root.endedAt.getTime() < endedBefore.getTime()
          )
          .sort((a, b) => a.root.endedAt!.getTime() - b.root.endedAt!.getTime())
          .slice(0, limit)
          .map((view) => view.run.key)
        if (due.length === 0) return Effect.succeed({ _tag: "Deleted", runs: [] })
        return Effect.zipRight(
          beforeCommit?.(due) ?? Effect.void,
          Effect.sync(() => {
            for (const key of due) removeRun(key)
            return { _tag: "Deleted" as const, runs: due }
          })
        )
      }))
  }
  return store
})

export const make: Effect.Effect<RunStore["Type"]> = Effect.suspend(() => makeWithOutbox(makeTable()))

export const layer: Layer.Layer<RunStore> = Layer.effect(RunStore, make)

/** The RunStore and the Outbox it writes, sharing one memory. */
export const layerWithOutbox: Layer.Layer<RunStore | Outbox> = Layer.effectContext(
  Effect.suspend(() => {
    const table = makeTable()
    return Effect.map(makeWithOutbox(table), (store) =>
      Context.make(RunStore, store).pipe(Context.add(Outbox, makeOutbox(table))))
  })
)
