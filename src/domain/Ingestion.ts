import { Clock, Context, Effect, Layer, Option } from "effect"
import { ChangeFeed } from "../ports/ChangeFeed.js"
import { RunStore, type StoreUnavailable } from "../ports/RunStore.js"
import { mergeAttempt } from "./AttemptMerge.js"
import { NotFound } from "./Errors.js"
import type { StatusReport, StoredEvent } from "./Events.js"
import { type ActionKey, actionKeyText, type RunKey, runKeyText } from "./Ids.js"
import type { Payload } from "./Payload.js"
import { ActionPhase, ActionType, isTerminal } from "./Phase.js"
import { applyStatus } from "./PhaseRules.js"
import type { ActionRecord, TaskRef } from "./Records.js"

/** An action an executor records (RecordAction), as the domain sees it. */
export interface RecordActionInput {
  readonly key: ActionKey
  readonly parent: string | undefined
  readonly group: string | undefined
  readonly inputUri: string | undefined
  readonly spec:
    | {
      readonly kind: "task"
      readonly task: TaskRef | undefined
      readonly taskType: string | undefined
      readonly shortName: string | undefined
      readonly environmentName: string | undefined
      readonly spec: Payload | undefined
    }
    | {
      readonly kind: "trace"
      readonly name: string
      readonly phase: ActionPhase
      readonly startTime: Date | undefined
      readonly endTime: Date | undefined
      readonly outputsUri: string | undefined
      readonly spec: Payload | undefined
    }
    | { readonly kind: "condition"; readonly name: string; readonly spec: Payload }
}

/** The use cases of InternalRunService (SPEC 6): what executors report. Each accepted change is published to
 * the change feed after its transaction commits. */
export class Ingestion extends Context.Tag("runs/Ingestion")<Ingestion, {
  /** Creates the action under its run (`NotFound` if the run is unknown); recording it again changes nothing. */
  readonly recordAction: (input: RecordActionInput) => Effect.Effect<void, NotFound | StoreUnavailable>
  /** Applies a status report by the phase rules; a stale one is acknowledged and changes nothing. */
  readonly updateStatus: (key: ActionKey, report: StatusReport) => Effect.Effect<void, NotFound | StoreUnavailable>
  /** Stores the events (a re-sent one is ignored) and rebuilds the attempts they touch, in one transaction. */
  readonly recordEvents: (
    events: ReadonlyArray<StoredEvent>
  ) => Effect.Effect<ReadonlyArray<ActionKey>, StoreUnavailable>
}>() {}

/** What a recorded action takes from its run: fixed when the run is created, so it may be remembered. */
interface RunFacts {
  readonly org: string
  readonly source: ActionRecord["source"]
  readonly createdBy: string | undefined
  /** Which run of that name they are facts of: a run can be deleted (retention) and another created under
   * its name, and the store refuses an action meant for the one before. */
  readonly createdAt: Date
}

/** Runs whose facts are remembered: a fan-out records thousands of actions of one run without reading it each time. */
const rememberedRuns = 1000

const actionFrom = (input: RecordActionInput, run: RunFacts, now: Date): ActionRecord => {
  const base = {
    key: input.key,
    org: run.org,
    parent: input.parent,
    attempts: 1,
    cacheStatus: 0,
    group: input.group,
    source: run.source,
    triggerName: undefined,
    createdBy: run.createdBy,
    metadata: undefined,
    inputUri: input.inputUri,
    runOutputBase: undefined,
    outputsUri: undefined,
    abort: undefined,
    errorInfo: undefined,
    updatedAt: now
  }
  const spec = input.spec
  switch (spec.kind) {
    case "task":
      return {
        ...base,
        type: ActionType.TASK,
        phase: ActionPhase.QUEUED,
        task: spec.task,
        taskType: spec.taskType,
        shortName: spec.shortName ?? spec.task?.name,
        functionName: spec.task?.name,
        environmentName: spec.environmentName,
        spec: spec.spec === undefined ? undefined : { kind: "task", payload: spec.spec },
        startedAt: now,
        endedAt: undefined,
        createdAt: now
      }
    case "trace": {
      const start = spec.startTime ?? now
      const end = spec.endTime ?? (now.getTime() < start.getTime() ? start : now)
      return {
        ...base,
        type: ActionType.TRACE,
        phase: isTerminal(spec.phase) ? spec.phase : ActionPhase.SUCCEEDED,
        task: undefined,
        taskType: undefined,
        shortName: spec.name,
        functionName: spec.name,
        environmentName: undefined,
        spec: spec.spec === undefined ? undefined : { kind: "trace", payload: spec.spec },
        outputsUri: spec.outputsUri,
        startedAt: start,
        endedAt: end.getTime() < start.getTime() ? start : end,
        createdAt: start
      }
    }
    case "condition":
      return {
        ...base,
        type: ActionType.CONDITION,
        phase: ActionPhase.QUEUED,
        task: undefined,
        taskType: undefined,
        shortName: spec.name,
        functionName: spec.name,
        environmentName: undefined,
        spec: { kind: "condition", payload: spec.spec },
        startedAt: now,
        endedAt: undefined,
        createdAt: now
      }
  }
}

export const make = Effect.gen(function*() {
  const store = yield* RunStore
  const feed = yield* ChangeFeed
  const now = Effect.map(Clock.currentTimeMillis, (millis) => new Date(millis))
  // The store checks again, when it writes the action, that the run exists and is the one these facts are of
  // (its creation time): a run gone since is NotFound, and one created again under its name is read afresh.
  const runs = new Map<string, RunFacts>()
  const readFacts = (key: RunKey) =>
    Effect.map(store.getRun(key), Option.map((view) => {
      const facts = {
        org: view.run.org,
        source: view.root.source,
        createdBy: view.root.createdBy,
        createdAt: view.run.createdAt
      }
      const text = runKeyText(key)
      runs.delete(text)
      if (runs.size >= rememberedRuns) runs.delete(runs.keys().next().value!)
      runs.set(text, facts)
      return facts
    }))
  const notFound = (key: RunKey) => new NotFound({ message: `run ${runKeyText(key)} not found` })

  // Tasks already in the `tasks` table: a fan-out records thousands of actions of one task.
  const knownTasks = new Set<string>()
  /** A recorded task action's spec, in the `tasks` table under its task id (TaskService lists it; the first
   * spec recorded under an id is kept, as CreateRun's). */
  const recordTask = (input: RecordActionInput, run: RunFacts, at: Date) => {
    const spec = input.spec
    if (spec.kind !== "task" || spec.task === undefined || spec.spec === undefined) return Effect.void
    const { domain, name, org, project, version } = spec.task
    if ([project, domain, name, version].includes("")) return Effect.void
    const text = `${project}/${domain}/${name}/${version}`
    if (knownTasks.has(text)) return Effect.void
    return store.deployTask({
      key: { project, domain, name, version },
      org,
      spec: spec.spec,
      createdAt: at,
      deployedBy: run.createdBy
    }).pipe(Effect.tap(() =>
      Effect.sync(() => {
        if (knownTasks.size >= rememberedRuns) knownTasks.delete(knownTasks.values().next().value!)
        knownTasks.add(text)
      })
    ))
  }

  return Ingestion.of({
    recordAction: Effect.fn("Ingestion.recordAction")(function*(input) {
      const run = input.key.run
      const record = (facts: RunFacts) =>
        Effect.flatMap(now, (at) =>
          Effect.map(store.recordAction(actionFrom(input, facts, at), mergeAttempt, facts.createdAt), (created) => ({ created, facts, at })))
      const forget = Effect.sync(() => runs.delete(runKeyText(run)))
      const withFreshFacts = Effect.flatMap(readFacts(run), Option.match({
        onNone: () => Effect.fail(notFound(run)),
        onSome: (facts) =>
          record(facts).pipe(Effect.catchTag("ActionMissing", () => Effect.zipRight(forget, Effect.fail(notFound(run)))))
      }))
      const remembered = runs.get(runKeyText(run))
      // Remembered facts may be of a run deleted since: then the run is read again and the write tried once more.
      const outcome = yield* remembered === undefined
        ? withFreshFacts
        : record(remembered).pipe(Effect.catchTag("ActionMissing", () => Effect.zipRight(forget, withFreshFacts)))
      if (outcome.created) yield* feed.publish([{ action: input.key, kind: "created" }])
      if (outcome.created) yield* recordTask(input, outcome.facts, outcome.at)
    }),

    updateStatus: Effect.fn("Ingestion.updateStatus")(function*(key, report) {
      const at = yield* now
      const outcome = yield* store.updateAction(key, (current, context) =>
        applyStatus(current, report, { rootPhase: context.rootPhase, now: at }))
      if (outcome._tag === "Missing") {
        return yield* new NotFound({ message: `action ${actionKeyText(key)} not found` })
      }
      if (outcome._tag === "Updated") yield* feed.publish([{ action: key, kind: "updated" }])
    }),

    recordEvents: Effect.fn("Ingestion.recordEvents")(function*(events) {
      if (events.length === 0) return []
      const touched = yield* store.recordEvents(events, mergeAttempt)
      yield* feed.publish(touched.map((action) => ({ action, kind: "events" as const })))
      return touched
    })
  })
})

/** Needs RunStore and ChangeFeed. */
export const layer = Layer.effect(Ingestion, make)
