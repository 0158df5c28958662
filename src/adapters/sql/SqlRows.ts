import type { SqlClient, Statement } from "@effect/sql"
import { Array as Arr } from "effect"
import type { RunKey } from "../../domain/Ids.js"
import { Fingerprint } from "../../domain/Payload.js"
import {
  ActionPhase,
  ActionType,
  type ActionTypeName,
  actionTypeName,
  phaseColumn,
  phaseFromColumn
} from "../../domain/Phase.js"
import {
  type ActionRecord,
  type ActionSpec,
  durationMs,
  type RunRecord,
  type RunView,
  type TaskRecord
} from "../../domain/Records.js"
import { actionTypeNumbers, runSourceNames, runSourceOf } from "./SqlEnums.js"
import { bytes, type JsonReader, payloadFrom } from "./SqlPayloads.js"

/** Rows as both clients return them: times as ISO-8601 text, BIGINT as numbers, binary as Buffers. */
type Text = string | null
type Binary = Uint8Array | null

export interface RunRow {
  readonly id: number
  readonly org: string
  readonly project: string
  readonly domain: string
  readonly name: string
  readonly root_action_name: string
  readonly trigger_org: Text
  readonly trigger_project: Text
  readonly trigger_domain: Text
  readonly trigger_name: Text
  readonly run_spec: unknown
  readonly run_spec_pb: Binary
  readonly cluster: Text
  readonly fingerprint: Text
  readonly request_id: Text
  readonly created_by_principal: Text
  readonly created_by_k8s_service_account: Text
  readonly created_at: string
  readonly updated_at: string
}

export interface ActionRow {
  readonly id: number
  readonly org: string
  readonly project: string
  readonly domain: string
  readonly run_name: string
  readonly name: string
  readonly run_id: number
  readonly parent_action_name: Text
  readonly action_type: string
  readonly phase_number: number
  readonly attempts: number
  readonly cache_status: number
  readonly group_name: Text
  readonly task_org: Text
  readonly task_project: Text
  readonly task_domain: Text
  readonly task_name: Text
  readonly task_version: Text
  readonly task_type: Text
  readonly short_name: Text
  readonly function_name: Text
  readonly environment_name: Text
  readonly run_source: Text
  readonly trigger_name: Text
  readonly created_by: Text
  readonly task_spec: unknown
  readonly task_spec_pb: Binary
  readonly trace_spec: unknown
  readonly trace_spec_pb: Binary
  readonly condition_spec: unknown
  readonly condition_spec_pb: Binary
  readonly metadata: unknown
  readonly metadata_pb: Binary
  readonly error_info: unknown
  readonly error_info_pb: Binary
  readonly input_uri: Text
  readonly run_output_base: Text
  readonly outputs_uri: Text
  readonly abort_reason: Text
  readonly aborted_by: Text
  readonly started_at: Text
  readonly ended_at: Text
  readonly created_at: string
  readonly updated_at: string
}

export interface TaskRow {
  readonly org: string
  readonly project: string
  readonly domain: string
  readonly name: string
  readonly version: string
  readonly spec: unknown
  readonly spec_pb: Uint8Array
  readonly created_at: string
  readonly deployed_by: string | null
  readonly is_entrypoint: number | null
}

const runColumnNames: ReadonlyArray<keyof RunRow> = [
  "id", "org", "project", "domain", "name", "root_action_name", "trigger_org", "trigger_project", "trigger_domain",
  "trigger_name", "run_spec", "run_spec_pb", "cluster", "fingerprint", "request_id", "created_by_principal",
  "created_by_k8s_service_account", "created_at", "updated_at"
]

/** The columns `actionOfRow` reads (ActionRow's). */
const actionColumnNames: ReadonlyArray<keyof ActionRow> = [
  "id", "org", "project", "domain", "run_name", "name", "run_id", "parent_action_name", "action_type", "phase_number",
  "attempts", "cache_status", "group_name", "task_org", "task_project", "task_domain", "task_name", "task_version",
  "task_type", "short_name", "function_name", "environment_name", "run_source", "trigger_name", "created_by",
  "task_spec", "task_spec_pb", "trace_spec", "trace_spec_pb", "condition_spec", "condition_spec_pb", "metadata",
  "metadata_pb", "error_info", "error_info_pb", "input_uri", "run_output_base", "outputs_uri", "abort_reason",
  "aborted_by", "started_at", "ended_at", "created_at", "updated_at"
]

/** The specs, which no list shows: lists select NULL in their place (see `listedView`). */
const specColumnNames: ReadonlySet<string> = new Set([
  "task_spec", "task_spec_pb", "trace_spec", "trace_spec_pb", "condition_spec", "condition_spec_pb", "run_spec",
  "run_spec_pb"
])

const column = (table: string, name: string, as: string, listed: boolean) =>
  listed && specColumnNames.has(name) ? `NULL AS ${as}` : name === as ? `${table}.${name}` : `${table}.${name} AS ${as}`

const viewColumns = (listed: boolean) =>
  [
    ...actionColumnNames.map((name) => column("a", name, name, listed)),
    ...runColumnNames.map((name) => column("r", name, `run_${name}`, listed))
  ].join(", ")

/** The columns of `selectViews`. */
export const viewColumnList = viewColumns(false)

/** Actions `a` joined to their runs `r`, the run's columns prefixed `run_` so they don't collide. */
export const selectViews = `SELECT ${viewColumnList} FROM actions a JOIN runs r ON r.id = a.run_id`

/** `selectViews` for lists: the specs left out. */
export const selectListedViews = `SELECT ${viewColumns(true)} FROM actions a JOIN runs r ON r.id = a.run_id`

/** The columns `actionOfRow` reads, of actions `a`. */
export const actionColumnList = actionColumnNames.map((name) => column("a", name, name, false)).join(", ")

/** The same, unqualified: for `RETURNING`. */
export const actionColumnNameList = actionColumnNames.join(", ")

/** The columns `taskOfRow` reads. */
export const taskColumnList = "org, project, domain, name, version, spec, spec_pb, created_at, deployed_by, is_entrypoint"

/** Actions `a` for lists: the specs left out. */
export const selectListedActions = `SELECT ${actionColumnNames.map((name) => column("a", name, name, true)).join(", ")}
  FROM actions a`

export type ViewRow = ActionRow & Record<string, unknown>

export const runRowOfPrefixed = (row: Record<string, unknown>): RunRow =>
  Object.fromEntries(runColumnNames.map((column) => [column, row[`run_${column}`]])) as unknown as RunRow

export const iso = (date: Date): string => date.toISOString()
const isoOrNull = (date: Date | undefined): string | null => (date === undefined ? null : iso(date))
export const dateOf = (text: string): Date => new Date(text)
const dateOrUndefined = (text: Text): Date | undefined => (text === null ? undefined : new Date(text))
const orNull = <A>(value: A | undefined): A | null => value ?? null
const orUndefined = <A>(value: A | null): A | undefined => value ?? undefined

const specColumns = {
  task: ["task_spec", "task_spec_pb"],
  trace: ["trace_spec", "trace_spec_pb"],
  condition: ["condition_spec", "condition_spec_pb"]
} as const

export const runRow = (run: RunRecord) => ({
  org: run.org,
  project: run.key.project,
  domain: run.key.domain,
  name: run.key.name,
  root_action_name: run.rootActionName,
  trigger_org: orNull(run.trigger?.org),
  trigger_project: orNull(run.trigger?.project),
  trigger_domain: orNull(run.trigger?.domain),
  trigger_name: orNull(run.trigger?.name),
  run_spec: run.runSpec.json,
  run_spec_pb: bytes(run.runSpec.binary),
  cluster: orNull(run.cluster),
  fingerprint: run.fingerprint,
  request_id: orNull(run.requestId),
  created_by_principal: orNull(run.createdByPrincipal),
  created_by_k8s_service_account: orNull(run.createdByServiceAccount),
  created_at: iso(run.createdAt),
  updated_at: iso(run.updatedAt)
})

/** The columns an action's state changes (status updates, aborts) keep in sync. */
export const actionStateRow = (action: ActionRecord) => ({
  phase: phaseColumn(action.phase),
  phase_number: action.phase,
  attempts: action.attempts,
  cache_status: action.cacheStatus,
  started_at: iso(action.startedAt),
  ended_at: isoOrNull(action.endedAt),
  duration_ms: orNull(durationMs(action)),
  abort_reason: orNull(action.abort?.reason),
  aborted_by: orNull(action.abort?.abortedBy),
  updated_at: iso(action.updatedAt)
})

/** Every column of an action but the ones that identify it (its key and run). */
export const actionFieldsRow = (action: ActionRecord) => {
  const spec = (kind: ActionSpec["kind"]) => {
    const [json, pb] = specColumns[kind]
    const payload = action.spec?.kind === kind ? action.spec.payload : undefined
    return { [json]: orNull(payload?.json), [pb]: payload === undefined ? null : bytes(payload.binary) }
  }
  return {
    org: action.org,
    parent_action_name: orNull(action.parent),
    action_type: actionTypeName(action.type) ?? "TASK",
    group_name: orNull(action.group),
    task_org: orNull(action.task?.org),
    task_project: orNull(action.task?.project),
    task_domain: orNull(action.task?.domain),
    task_name: orNull(action.task?.name),
    task_version: orNull(action.task?.version),
    task_type: orNull(action.taskType),
    short_name: orNull(action.shortName),
    function_name: orNull(action.functionName),
    environment_name: orNull(action.environmentName),
    run_source: runSourceNames[action.source],
    trigger_name: orNull(action.triggerName),
    created_by: orNull(action.createdBy),
    ...spec("task"),
    ...spec("trace"),
    ...spec("condition"),
    metadata: orNull(action.metadata?.json),
    metadata_pb: action.metadata === undefined ? null : bytes(action.metadata.binary),
    error_info: orNull(action.errorInfo?.json),
    error_info_pb: action.errorInfo === undefined ? null : bytes(action.errorInfo.binary),
    input_uri: orNull(action.inputUri),
    run_output_base: orNull(action.runOutputBase),
    outputs_uri: orNull(action.outputsUri),
    ...actionStateRow(action),
    created_at: iso(action.createdAt)
  }
}

const sameColumnValue = (a: unknown, b: unknown): boolean =>
  a === b || (a instanceof Uint8Array && b instanceof Uint8Array && Buffer.compare(a, b) === 0)

/**
 * The columns of `next` whose values differ from those of `current` (rows of the same shape), so that an update
 * writes only those: a status update then leaves an action's spec as it is stored instead of sending it again.
 */
export const changedColumns = <Row extends Record<string, unknown>>(current: Row, next: Row): Partial<Row> =>
  Object.fromEntries(
    Object.entries(next).filter(([column, value]) => !sameColumnValue(current[column], value))
  ) as Partial<Row>

export const actionRow = (action: ActionRecord, runId: number) => ({
  project: action.key.run.project,
  domain: action.key.run.domain,
  run_name: action.key.run.name,
  name: action.key.name,
  run_id: runId,
  ...actionFieldsRow(action)
})

export const taskRow = (task: TaskRecord) => ({
  org: task.org,
  project: task.key.project,
  domain: task.key.domain,
  name: task.key.name,
  version: task.key.version,
  spec: task.spec.json,
  spec_pb: bytes(task.spec.binary),
  created_at: iso(task.createdAt),
  updated_at: iso(task.createdAt),
  deployed_by: orNull(task.deployedBy),
  is_entrypoint: task.entrypoint === undefined ? null : task.entrypoint ? 1 : 0
})

export const runOfRow = (row: RunRow, readJson: JsonReader): RunRecord => ({
  key: { project: row.project, domain: row.domain, name: row.name },
  org: row.org,
  rootActionName: row.root_action_name,
  trigger: row.trigger_name === null ? undefined : {
    org: row.trigger_org ?? "",
    project: row.trigger_project ?? "",
    domain: row.trigger_domain ?? "",
    name: row.trigger_name
  },
  runSpec: payloadFrom(row.run_spec, row.run_spec_pb ?? new Uint8Array(), readJson)!,
  createdByPrincipal: orUndefined(row.created_by_principal),
  createdByServiceAccount: orUndefined(row.created_by_k8s_service_account),
  cluster: orUndefined(row.cluster),
  fingerprint: Fingerprint(row.fingerprint ?? ""),
  requestId: orUndefined(row.request_id),
  createdAt: dateOf(row.created_at),
  updatedAt: dateOf(row.updated_at)
})

const specOfRow = (row: ActionRow, readJson: JsonReader): ActionSpec | undefined => {
  for (const kind of ["task", "trace", "condition"] as const) {
    const [json, pb] = specColumns[kind]
    const payload = payloadFrom(row[json], row[pb], readJson)
    if (payload !== undefined) return { kind, payload }
  }
  return undefined
}

export const actionOfRow = (row: ActionRow, readJson: JsonReader): ActionRecord => ({
  key: { run: { project: row.project, domain: row.domain, name: row.run_name }, name: row.name },
  org: row.org,
  parent: orUndefined(row.parent_action_name),
  type: actionTypeNumbers[row.action_type as ActionTypeName] ?? ActionType.UNSPECIFIED,
  phase: row.phase_number as ActionPhase,
  attempts: row.attempts,
  cacheStatus: row.cache_status,
  group: orUndefined(row.group_name),
  task: row.task_name === null ? undefined : {
    org: row.task_org ?? "",
    project: row.task_project ?? "",
    domain: row.task_domain ?? "",
    name: row.task_name,
    version: row.task_version ?? ""
  },
  taskType: orUndefined(row.task_type),
  shortName: orUndefined(row.short_name),
  functionName: orUndefined(row.function_name),
  environmentName: orUndefined(row.environment_name),
  source: runSourceOf(row.run_source),
  triggerName: orUndefined(row.trigger_name),
  createdBy: orUndefined(row.created_by),
  spec: specOfRow(row, readJson),
  metadata: payloadFrom(row.metadata, row.metadata_pb, readJson),
  inputUri: orUndefined(row.input_uri),
  runOutputBase: orUndefined(row.run_output_base),
  outputsUri: orUndefined(row.outputs_uri),
  startedAt: dateOf(row.started_at ?? row.created_at),
  endedAt: dateOrUndefined(row.ended_at),
  abort: row.abort_reason === null ? undefined : { reason: row.abort_reason, abortedBy: orUndefined(row.aborted_by) },
  errorInfo: payloadFrom(row.error_info, row.error_info_pb, readJson),
  createdAt: dateOf(row.created_at),
  updatedAt: dateOf(row.updated_at)
})

export const taskOfRow = (row: TaskRow, readJson: JsonReader): TaskRecord => ({
  key: { project: row.project, domain: row.domain, name: row.name, version: row.version },
  org: row.org,
  spec: payloadFrom(row.spec, row.spec_pb, readJson)!,
  createdAt: dateOf(row.created_at),
  deployedBy: orUndefined(row.deployed_by),
  entrypoint: row.is_entrypoint === null ? undefined : row.is_entrypoint === 1
})

export const viewOfRow = (row: ViewRow, readJson: JsonReader): RunView => ({
  run: runOfRow(runRowOfPrefixed(row), readJson),
  root: actionOfRow(row, readJson)
})

export const phaseOfColumn = (text: string): ActionPhase => phaseFromColumn(text) ?? ActionPhase.UNSPECIFIED

/**
 * `(project = ? AND domain = ? AND name = ?) OR ...` for `keys`, on the runs table's columns under `prefix` (`"r."`
 * or `""`), in parts of at most 200 keys: each key is a lookup of the unique (project, domain, name) index, and
 * SQLite nests at most 1000 ORs.
 */
export const runKeysMatching = (
  sql: SqlClient.SqlClient,
  prefix: "r." | "",
  keys: ReadonlyArray<RunKey>
): Array<Statement.Fragment> =>
  Arr.chunksOf(keys, 200).map((part) =>
    sql.or(part.map((key) => {
      const column = (name: string) => sql.literal(`${prefix}${name}`)
      return sql`(${column("project")} = ${key.project} AND ${column("domain")} = ${key.domain} AND ${
        column("name")
      } = ${key.name})`
    }))
  )
