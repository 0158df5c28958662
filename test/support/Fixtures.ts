import type { StoredEvent } from "../../src/domain/Events.js"
import type { ActionKey, RunKey, TaskKey } from "../../src/domain/Ids.js"
import { rootActionName } from "../../src/domain/Ids.js"
import type { ListField, ListFilter, ListQuery, SortDirection, SortKey } from "../../src/domain/ListQuery.js"
import { Fingerprint, type Payload } from "../../src/domain/Payload.js"
import { ActionPhase, ActionType, isTerminal, RunSource } from "../../src/domain/Phase.js"
import type {
  ActionRecord,
  AttemptRecord,
  RunRecord,
  RunView,
  TaskRecord,
  TaskRef,
  TriggerRef
} from "../../src/domain/Records.js"

/**
 * Builders of domain records for tests, with consistent defaults. Times are whole milliseconds (never finer:
 * SQLite keeps milliseconds) and distinct: `at(i)` is a fixed base plus `i` seconds, with a non-zero
 * millisecond part so that a store truncating to seconds is caught.
 */
const base = Date.UTC(2025, 0, 2, 3, 4, 5, 678)

export const at = (seconds: number): Date => new Date(base + seconds * 1000)

let sequence = 0
const next = () => ++sequence

/** A name no other call in this process returns (a DNS-1035 label). */
export const uniqueName = (prefix = "run"): string => `${prefix}-${next()}`

/** Bytes that are not valid UTF-8 (so a store that treats them as text is caught), then the JSON text. */
export const payload = (json: object): Payload => {
  const text = JSON.stringify(json)
  return { binary: Uint8Array.from([0x0a, 0xff, 0x00, 0x80, ...new TextEncoder().encode(text)]), json: text }
}

export const runKey = (overrides: Partial<RunKey> = {}): RunKey => ({
  project: "proj",
  domain: "development",
  name: uniqueName(),
  ...overrides
})

export const taskRef = (overrides: Partial<TaskRef> = {}): TaskRef => ({
  org: "org",
  project: "proj",
  domain: "development",
  name: "my.task",
  version: "v1",
  ...overrides
})

export interface RunViewOverrides {
  readonly key?: Partial<RunKey>
  readonly org?: string
  readonly createdAt?: Date
  readonly phase?: ActionPhase
  /** `undefined` gives a run without a task reference. */
  readonly task?: TaskRef | undefined
  readonly createdBy?: string | undefined
  readonly triggerName?: string | undefined
  readonly trigger?: TriggerRef | undefined
  readonly source?: RunSource
  readonly functionName?: string | undefined
  readonly environmentName?: string | undefined
  /** Defaults to createdAt + 1.5 s when the phase is terminal, else undefined. */
  readonly endedAt?: Date | undefined
  readonly requestId?: string | undefined
  /** Any other field of the run or of its root action. */
  readonly run?: Partial<RunRecord>
  readonly root?: Partial<ActionRecord>
}

/** Whether an override was given, even as `undefined`. */
const has = (overrides: object, key: string): boolean => key in overrides

/** A run and its root action `a0` as CreateRun writes them: phase QUEUED, attempts 1, started at creation. */
export const runView = (overrides: RunViewOverrides = {}): RunView => {
  const key = runKey(overrides.key)
  const org = overrides.org ?? "org"
  const createdAt = overrides.createdAt ?? at(next())
  const phase = overrides.phase ?? ActionPhase.QUEUED
  const task = has(overrides, "task") ? overrides.task : taskRef()
  const createdBy = has(overrides, "createdBy") ? overrides.createdBy : "alice@example.com"
  const endedAt = has(overrides, "endedAt")
    ? overrides.endedAt
    : isTerminal(phase) ? new Date(createdAt.getTime() + 1500) : undefined
  const run: RunRecord = {
    key,
    org,
    rootActionName,
    trigger: overrides.trigger,
    runSpec: payload({ rawDataStorage: { rawDataPrefix: "s3://bucket/raw" }, labels: { team: "a" } }),
    createdByPrincipal: createdBy,
    createdByServiceAccount: undefined,
    cluster: undefined,
    fingerprint: Fingerprint(`fp-${key.name}`),
    requestId: overrides.requestId,
    createdAt,
    updatedAt: createdAt,
    ...overrides.run
  }
  const root: ActionRecord = {
    key: { run: key, name: rootActionName },
    org,
    parent: undefined,
    type: ActionType.TASK,
    phase,
    attempts: 1,
    cacheStatus: 0,
    group: undefined,
    task,
    taskType: task === undefined ? undefined : "python",
    shortName: task === undefined ? undefined : "task",
    functionName: has(overrides, "functionName") ? overrides.functionName : "main",
    environmentName: has(overrides, "environmentName") ? overrides.environmentName : "env",
    source: overrides.source ?? RunSource.CLI,
    triggerName: overrides.triggerName,
    createdBy,
    spec: task === undefined ? undefined : { kind: "task", payload: payload({ taskTemplate: { id: task } }) },
    metadata: undefined,
    inputUri: `file:///data/${key.project}/${key.domain}/${key.name}/inputs/inputs.pb`,
    runOutputBase: `file:///data/${key.project}/${key.domain}/${key.name}/`,
    outputsUri: undefined,
    startedAt: createdAt,
    endedAt,
    abort: undefined,
    errorInfo: undefined,
    createdAt,
    updatedAt: endedAt ?? createdAt,
    ...overrides.root
  }
  return { run, root }
}

/** A child action of `run` (parent `a0` unless `overrides.parent` says otherwise), created after the run. */
export const childAction = (
  run: RunView | RunKey,
  name: string,
  overrides: Partial<ActionRecord> = {}
): ActionRecord => {
  const view = "run" in run ? run : undefined
  const key = "run" in run ? run.run.key : run
  const createdAt = overrides.createdAt ?? new Date((view?.run.createdAt ?? at(next())).getTime() + next() * 1000)
  const phase = overrides.phase ?? ActionPhase.QUEUED
  const endedAt = has(overrides, "endedAt")
    ? overrides.endedAt
    : isTerminal(phase) ? new Date(createdAt.getTime() + 1500) : undefined
  return {
    key: { run: key, name },
    org: view?.run.org ?? "org",
    parent: rootActionName,
    type: ActionType.TASK,
    phase,
    attempts: 1,
    cacheStatus: 0,
    group: "group-1",
    task: taskRef({ name: "child.task" }),
    taskType: "python",
    shortName: "child",
    functionName: "child",
    environmentName: "env",
    source: RunSource.CLI,
    triggerName: undefined,
    createdBy: undefined,
    spec: { kind: "task", payload: payload({ taskTemplate: { name } }) },
    metadata: undefined,
    inputUri: `file:///data/${key.project}/${key.domain}/${key.name}/${name}/inputs.pb`,
    runOutputBase: undefined,
    outputsUri: undefined,
    startedAt: createdAt,
    endedAt,
    abort: undefined,
    errorInfo: undefined,
    createdAt,
    updatedAt: endedAt ?? createdAt,
    ...overrides
  }
}

export const actionKey = (run: RunView | RunKey, name: string): ActionKey => ({
  run: "run" in run ? run.run.key : run,
  name
})

export interface AttemptOverrides extends Partial<AttemptRecord> {
  /** When the attempt started; its transitions and cluster events follow it. Defaults to `at(n * 100)`. */
  readonly start?: Date
}

/**
 * Attempt `n`, open (RUNNING) unless a terminal phase is given: QUEUED then RUNNING transitions, two cluster
 * events, a log, a log context and a cluster. A terminal attempt has an end time and a closed last transition.
 */
export const attempt = (n: number, overrides: AttemptOverrides = {}): AttemptRecord => {
  const { start: givenStart, ...rest } = overrides
  const start = givenStart ?? at(n * 100)
  const later = (seconds: number) => new Date(start.getTime() + seconds * 1000)
  const phase = rest.phase ?? ActionPhase.RUNNING
  const end = isTerminal(phase) ? later(30) : undefined
  const transitions = [
    { phase: ActionPhase.QUEUED, startTime: start, endTime: later(2) },
    { phase: ActionPhase.RUNNING, startTime: later(2), endTime: end }
  ]
  return {
    attempt: n,
    phase,
    startTime: start,
    endTime: end,
    outputs: phase === ActionPhase.SUCCEEDED ? payload({ literals: { o0: n } }) : undefined,
    logInfo: [payload({ name: "stdout", uri: `file:///logs/${n}` }), payload({ name: "stderr" })],
    logContext: payload({ podName: `pod-${n}` }),
    errorInfo: phase === ActionPhase.FAILED ? payload({ message: "boom" }) : undefined,
    cluster: "cluster-a",
    cacheStatus: 0,
    logsAvailable: true,
    phaseTransitions: end === undefined
      ? transitions
      : [...transitions, { phase, startTime: end, endTime: end }],
    clusterEvents: [
      { occurredAt: later(1), message: "Scheduled" },
      { occurredAt: later(2), message: "Started container" }
    ],
    ...rest
  }
}

/**
 * An event of attempt 1 of `key` as the event log keeps it: RUNNING, version 0, reported and updated now-ish,
 * with every fact the attempt merge reads set (and distinct from other events'), so a store that loses one is
 * caught.
 */
export const storedEvent = (key: ActionKey, overrides: Partial<StoredEvent> = {}): StoredEvent => {
  const n = next()
  const time = at(n)
  const phase = overrides.phase ?? ActionPhase.RUNNING
  const version = overrides.version ?? 0
  return {
    key,
    attempt: 1,
    phase,
    version,
    reportedTime: time,
    updatedTime: time,
    errorInfo: payload({ message: `error ${n}` }),
    logInfo: [
      { name: "stdout", payload: payload({ name: "stdout", uri: `file:///logs/${n}` }) },
      { name: `log-${n}`, payload: payload({ name: `log-${n}` }) }
    ],
    logContext: payload({ primaryPodName: `pod-${n}` }),
    cluster: `cluster-${n}`,
    outputs: payload({ outputUri: `file:///out/${n}` }),
    cacheStatus: 1 + (n % 5),
    clusterEvents: [
      { occurredAt: at(n - 1), message: `scheduled ${n}` },
      { occurredAt: time, message: "started \u00e9\"\n" }
    ],
    raw: payload({ id: { name: key.name }, phase, version, n }),
    ...overrides
  }
}

export const taskKey = (overrides: Partial<TaskKey> = {}): TaskKey => ({
  project: "proj",
  domain: "development",
  name: "my.task",
  version: "v1",
  ...overrides
})

/** The task record CreateRun stores beside a run (keyed like `view.root.task` when a view is given). */
export const taskRecord = (
  overrides: Partial<TaskRecord> & { readonly view?: RunView } = {}
): TaskRecord => {
  const { view, ...rest } = overrides
  const ref = view?.root.task
  return {
    key: ref === undefined
      ? taskKey()
      : { project: ref.project, domain: ref.domain, name: ref.name, version: ref.version },
    org: ref?.org ?? "org",
    spec: payload({ template: { id: ref?.name ?? "my.task" }, n: next() }),
    createdAt: view?.run.createdAt ?? at(next()),
    deployedBy: undefined,
    entrypoint: undefined,
    ...rest
  }
}

/** `keys`, then `created_at` and the unique key (project, domain, run_name, name) in the first key's direction. */
export const fullOrder = (
  keys: ReadonlyArray<readonly [ListField, SortDirection]> = []
): ReadonlyArray<SortKey> => {
  const direction = keys[0]?.[1] ?? "DESC"
  const tail: ReadonlyArray<ListField> = ["created_at", "project", "domain", "run_name", "name"]
  return [
    ...keys.map(([field, dir]) => ({ field, direction: dir })),
    ...tail.map((field) => ({ field, direction }))
  ]
}

/** A list query; newest first with no filters and limit 50 unless overridden. */
export const listQuery = (overrides: Partial<ListQuery> = {}): ListQuery => ({
  filters: [],
  order: fullOrder(),
  limit: 50,
  after: undefined,
  ...overrides
})

export const filter = (
  field: ListField,
  fn: ListFilter["fn"],
  ...values: ReadonlyArray<string | number>
): ListFilter => ({ field, fn, values })

/**
 * A deep copy that `toStrictEqual` compares the way the store promises to keep things: dates as ISO text
 * (to the millisecond; a non-Date fails), payload bytes as hex, payload JSON parsed unless empty (a JSONB column may
 * reorder keys), undefined fields kept (so a field that comes back missing or null fails).
 */
export const comparable = (value: unknown): unknown => {
  if (value instanceof Date) return `date:${value.toISOString()}`
  if (value instanceof Uint8Array) return `bytes:${Buffer.from(value).toString("hex")}`
  if (Array.isArray(value)) return value.map((item) => comparable(item))
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value)
    const isPayload = entries.length === 2 && "binary" in value && "json" in value
    return Object.fromEntries(entries.map(([key, field]) => [
      key,
      isPayload && key === "json" && typeof field === "string" && field !== ""
        ? { parsed: JSON.parse(field) }
        : comparable(field)
    ]))
  }
  return value
}

