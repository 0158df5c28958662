import { Effect, Layer, Option } from "effect"
import { abortAction, abortAttempt, actionsToAbort } from "../../domain/Abort.js"
import { type ActionKey, actionKeyText, type RunKey, runKeyText, type TaskKey } from "../../domain/Ids.js"
import type { RunScope } from "../../domain/ListQuery.js"
import type { ActionRecord, AttemptRecord, RunRecord, RunView, TaskRecord } from "../../domain/Records.js"
import { ActionMissing, RunExists, RunStore } from "../../ports/RunStore.js"
import { type ListRow, pageOf } from "./MemoryListQuery.js"

const taskKeyText = (key: TaskKey) => `${key.project}/${key.domain}/${key.name}/${key.version}`

export const inScope = (scope: RunScope, view: RunView): boolean => {
  const task = view.root.task
  switch (scope.kind) {
    case "all":
      return true
    case "project":
      return view.run.key.project === scope.project && view.run.key.domain === scope.domain
    case "taskName":
      return task !== undefined && task.project === scope.project && task.domain === scope.domain &&
        task.name === scope.name
    case "taskId":
      return task !== undefined && task.project === scope.project && task.domain === scope.domain &&
        task.name === scope.name && task.version === scope.version
  }
}

/** The RunStore in memory: plain maps, every method atomic under one permit. */
export const make: Effect.Effect<RunStore["Type"]> = Effect.gen(function*() {
  const lock = yield* Effect.makeSemaphore(1)
  const atomic = <A, E>(effect: Effect.Effect<A, E>) => lock.withPermits(1)(effect)
  const runs = new Map<string, RunRecord>()
  /** By run key text, then action name, in creation order. */
  const actions = new Map<string, Map<string, ActionRecord>>()
  /** By action key text, then attempt number. */
  const attempts = new Map<string, Map<number, AttemptRecord>>()
  const tasks = new Map<string, TaskRecord>()

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

  const store: RunStore["Type"] = {
    createRun: ({ task, view }) =>
      atomic(Effect.suspend(() => {
        const existing = getView(view.run.key)
        if (existing !== undefined) return Effect.fail(new RunExists({ existing }))
        const text = runKeyText(view.run.key)
        runs.set(text, view.run)
        actions.set(text, new Map([[view.root.key.name, view.root]]))
        if (task !== undefined && !tasks.has(taskKeyText(task.key))) tasks.set(taskKeyText(task.key), task)
        return Effect.succeed(view)
      })),
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
    getAction: (key) =>
      atomic(Effect.sync(() => Option.fromNullable(actions.get(runKeyText(key.run))?.get(key.name)))),
    getTask: (key) => atomic(Effect.sync(() => Option.fromNullable(tasks.get(taskKeyText(key))))),
    listAttempts: (key) => atomic(Effect.sync(() => sortedAttempts(key))),
    putAttempts: (key, given) =>
      atomic(Effect.suspend(() => {
        if (actions.get(runKeyText(key.run))?.has(key.name) !== true) return Effect.fail(new ActionMissing({ key }))
        const text = actionKeyText(key)
        const byNumber = attempts.get(text) ?? new Map<number, AttemptRecord>()
        for (const attempt of given) byNumber.set(attempt.attempt, attempt)
        attempts.set(text, byNumber)
        return Effect.void
      })),
    listRuns: (scope, query) =>
      atomic(Effect.sync(() =>
        pageOf(
          views()
            .filter((view) => inScope(scope, view))
            .map((view): ListRow<RunView> => ({ item: view, action: view.root, run: view.run })),
          query
        )
      )),
    listActions: (run, query) =>
      atomic(Effect.sync(() =>
        pageOf(
          Array.from(actions.get(runKeyText(run))?.values() ?? []).map((action): ListRow<ActionRecord> => ({
            item: action,
            action,
            run: undefined
          })),
          query
        )
      )),
    abort: (target, abort, now) =>
      atomic(Effect.sync(() => {
        const ofRun = actions.get(runKeyText(target.run))
        if (ofRun?.has(target.name) !== true) return { _tag: "TargetMissing" as const }
        const names = actionsToAbort(Array.from(ofRun.values()), target.name)
        for (const name of names) {
          const key = { run: target.run, name }
          ofRun.set(name, abortAction(ofRun.get(name)!, abort, now))
          const latest = sortedAttempts(key).at(-1)
          if (latest !== undefined) attempts.get(actionKeyText(key))!.set(latest.attempt, abortAttempt(latest, now))
        }
        return { _tag: "Aborted" as const, aborted: names.map((name) => ({ run: target.run, name })) }
      })),
    recordAction: (action) =>
      atomic(Effect.suspend(() => {
        const ofRun = actions.get(runKeyText(action.key.run))
        if (ofRun === undefined) return Effect.fail(new ActionMissing({ key: action.key }))
        if (ofRun.has(action.key.name)) return Effect.succeed(false)
        ofRun.set(action.key.name, action)
        return Effect.succeed(true)
      }))
  }
  return store
})

export const layer: Layer.Layer<RunStore> = Layer.effect(RunStore, make)
