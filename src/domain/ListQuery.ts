import type { ActionRecord, RunRecord, RunView } from "./Records.js"
import { durationMs } from "./Records.js"

/**
 * The list query model of SPEC 7: fields by their API names, one table mapping each to what it reads, the
 * filter functions of `Filter.Function` in 2.0.16, and a total order ending in the unique key so that a
 * keyset cursor never repeats or skips a row.
 */
export const listFields = {
  project: "text",
  domain: "text",
  run_name: "text",
  name: "text",
  phase: "number",
  action_type: "number",
  run_source: "number",
  task_project: "text",
  task_domain: "text",
  task_name: "text",
  task_version: "text",
  function_name: "text",
  environment_name: "text",
  trigger_name: "text",
  created_by: "text",
  parent_name: "text",
  created_at: "time",
  updated_at: "time",
  ended_at: "time",
  duration_ms: "number"
} as const

export type ListField = keyof typeof listFields
export type FieldKind = (typeof listFields)[ListField]

export type FilterFunction =
  | "EQUAL"
  | "NOT_EQUAL"
  | "GREATER_THAN"
  | "GREATER_THAN_OR_EQUAL"
  | "LESS_THAN"
  | "LESS_THAN_OR_EQUAL"
  | "CONTAINS"
  | "CONTAINS_CASE_INSENSITIVE"
  | "ENDS_WITH"
  | "NOT_ENDS_WITH"
  | "VALUE_IN"

/**
 * A field's value for filtering, sorting and cursors: text, a number (phase, action type and run source by
 * their enum numbers, duration in ms), or a time as epoch milliseconds. A missing value reads as `""` for
 * text and `-1` for numbers and times, so it sorts first in ascending order on every backend.
 */
export type FieldValue = string | number

export const missingValue = (kind: FieldKind): FieldValue => (kind === "text" ? "" : -1)

/** One filter, its values already parsed to the field's kind (times as epoch ms, truncated to ms). */
export interface ListFilter {
  readonly field: ListField
  readonly fn: FilterFunction
  readonly values: ReadonlyArray<FieldValue>
}

export type SortDirection = "ASC" | "DESC"

export interface SortKey {
  readonly field: ListField
  readonly direction: SortDirection
}

export interface ListQuery {
  readonly filters: ReadonlyArray<ListFilter>
  /** The full order: the requested keys, then `created_at`, then project, domain, run_name, name. */
  readonly order: ReadonlyArray<SortKey>
  readonly limit: number
  /** The cursor: the `order` values of the last row of the previous page; rows strictly after it. */
  readonly after: ReadonlyArray<FieldValue> | undefined
}

/** Where ListRuns looks (SPEC 7); `org` lists every run. */
export type RunScope =
  | { readonly kind: "all" }
  | { readonly kind: "project"; readonly project: string; readonly domain: string }
  | { readonly kind: "taskName"; readonly project: string; readonly domain: string; readonly name: string }
  | {
    readonly kind: "taskId"
    readonly project: string
    readonly domain: string
    readonly name: string
    readonly version: string
  }

export interface Page<A> {
  readonly items: ReadonlyArray<A>
  /** The cursor of the next page, or undefined on the last page. */
  readonly next: ReadonlyArray<FieldValue> | undefined
}

const text = (value: string | undefined): FieldValue => value ?? ""
const time = (value: Date | undefined): FieldValue => (value === undefined ? -1 : value.getTime())

/** The value of `field` for an action (for a run: its root action, and the run for run-level fields). */
export const fieldValue = (field: ListField, action: ActionRecord, run?: RunRecord): FieldValue => {
  switch (field) {
    case "project":
      return action.key.run.project
    case "domain":
      return action.key.run.domain
    case "run_name":
      return action.key.run.name
    case "name":
      return action.key.name
    case "phase":
      return action.phase
    case "action_type":
      return action.type
    case "run_source":
      return action.source
    case "task_project":
      return text(action.task?.project)
    case "task_domain":
      return text(action.task?.domain)
    case "task_name":
      return text(action.task?.name)
    case "task_version":
      return text(action.task?.version)
    case "function_name":
      return text(action.functionName)
    case "environment_name":
      return text(action.environmentName)
    case "trigger_name":
      return text(action.triggerName ?? run?.trigger?.name)
    case "created_by":
      return text(action.createdBy)
    case "parent_name":
      return text(action.parent)
    case "created_at":
      return action.createdAt.getTime()
    case "updated_at":
      return action.updatedAt.getTime()
    case "ended_at":
      return time(action.endedAt)
    case "duration_ms":
      return durationMs(action) ?? -1
  }
}

/** Text compares by code unit, numbers numerically. */
export const compareValues = (a: FieldValue, b: FieldValue): number =>
  typeof a === "number" && typeof b === "number" ? a - b : a < b ? -1 : a > b ? 1 : 0

/** The cursor of a row: its values along the full order. */
export const cursorOf = (order: ReadonlyArray<SortKey>, action: ActionRecord, run?: RunRecord) =>
  order.map((key) => fieldValue(key.field, action, run))

/** Whether a run is in a ListRuns scope (the task scopes read the root action's task). */
export const inRunScope = (scope: RunScope, view: RunView): boolean => {
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

/** Whether `value` passes `filter` (the reference semantics, which the SQL store answers the same way). */
export const passesFilter = (
  filter: { readonly fn: FilterFunction; readonly values: ReadonlyArray<FieldValue> },
  value: FieldValue
): boolean => {
  const first = filter.values[0]
  if (filter.fn === "VALUE_IN") return filter.values.some((candidate) => compareValues(value, candidate) === 0)
  if (first === undefined) return false
  const text = String(value)
  const given = String(first)
  switch (filter.fn) {
    case "EQUAL":
      return compareValues(value, first) === 0
    case "NOT_EQUAL":
      return compareValues(value, first) !== 0
    case "GREATER_THAN":
      return compareValues(value, first) > 0
    case "GREATER_THAN_OR_EQUAL":
      return compareValues(value, first) >= 0
    case "LESS_THAN":
      return compareValues(value, first) < 0
    case "LESS_THAN_OR_EQUAL":
      return compareValues(value, first) <= 0
    case "CONTAINS":
      return text.includes(given)
    case "CONTAINS_CASE_INSENSITIVE":
      return text.toLowerCase().includes(given.toLowerCase())
    case "ENDS_WITH":
      return text.endsWith(given)
    case "NOT_ENDS_WITH":
      return !text.endsWith(given)
  }
}
