import type { SqlClient } from "@effect/sql"
import type { Fragment, Statement } from "@effect/sql/Statement"
import type { RunKey } from "../../domain/Ids.js"
import {
  type FieldKind,
  type FieldValue,
  type ListField,
  listFields,
  type ListFilter,
  type ListQuery,
  type RunScope,
  type SortKey
} from "../../domain/ListQuery.js"
import { actionTypeNumberSql, runSourceNumberSql } from "./SqlEnums.js"
import { comparisons, containsIgnoringCaseSql, matchesSql } from "./SqlFilterTerms.js"
import { type ActionRow, selectListedActions, selectListedViews, type ViewRow } from "./SqlRows.js"

/**
 * `ListQuery` as SQL over `actions a` (joined to `runs r` when listing runs). A missing value reads as ''
 * or -1 (minus infinity for times), as in the domain; only nullable columns are wrapped in COALESCE so the
 * listing indexes still match the NOT NULL ones.
 */
type ListSource = "runs" | "actions"

type Dialect = "pg" | "sqlite"

const missingTime = { pg: "'-infinity'::timestamptz", sqlite: "''" } as const

const expression = (field: ListField, source: ListSource, dialect: Dialect): string => {
  const text = (column: string) => `COALESCE(${column}, '')`
  switch (field) {
    case "project":
    case "domain":
    case "run_name":
    case "name":
    case "created_at":
    case "updated_at":
      return `a.${field}`
    case "phase":
      return "a.phase_number"
    case "action_type":
      return actionTypeNumberSql("a.action_type")
    case "run_source":
      return runSourceNumberSql("a.run_source")
    case "task_project":
    case "task_domain":
    case "task_name":
    case "task_version":
    case "function_name":
    case "environment_name":
    case "created_by":
      return text(`a.${field}`)
    case "trigger_name":
      return source === "runs" ? "COALESCE(a.trigger_name, r.trigger_name, '')" : text("a.trigger_name")
    case "parent_name":
      return text("a.parent_action_name")
    case "ended_at":
      return `COALESCE(a.ended_at, ${missingTime[dialect]})`
    case "duration_ms":
      return "COALESCE(a.duration_ms, -1)"
  }
}

const makeListSql = (sql: SqlClient.SqlClient, source: ListSource) => {
  const dialect: Dialect = sql.onDialectOrElse({ pg: () => "pg" as const, orElse: () => "sqlite" as const })
  const column = (field: ListField) => sql.literal(expression(field, source, dialect))

  const param = (kind: FieldKind, value: FieldValue): FieldValue => {
    if (kind !== "time") return value
    if (value === -1) return dialect === "pg" ? "-infinity" : ""
    return new Date(value).toISOString()
  }

  // The domain allows substring functions on text fields only; numbers would match their decimal text.
  const asText = (field: ListField) =>
    listFields[field] === "number" ? sql`CAST(${column(field)} AS TEXT)` : column(field)

  const matches = (field: ListField, value: string, where: "contains" | "ends") => matchesSql(sql, asText(field), value, where)

  const filterSql = ({ field, fn, values }: ListFilter): Fragment => {
    const kind = listFields[field]
    const first = values[0]
    if (first === undefined) return sql.literal("1 = 0")
    const operator = comparisons[fn]
    if (operator !== undefined) return sql`${column(field)} ${sql.literal(operator)} ${param(kind, first)}`
    switch (fn) {
      case "VALUE_IN":
        return sql`${column(field)} IN ${sql.in(values.map((value) => param(kind, value)))}`
      case "CONTAINS":
        return matches(field, String(first), "contains")
      case "CONTAINS_CASE_INSENSITIVE":
        return containsIgnoringCaseSql(sql, asText(field), String(first))
      case "ENDS_WITH":
        return matches(field, String(first), "ends")
      default:
        return sql`NOT (${matches(field, String(first), "ends")})`
    }
  }

  const compare = (key: SortKey, operator: string, value: FieldValue) =>
    sql`${column(key.field)} ${sql.literal(operator)} ${param(listFields[key.field], value)}`

  // Rows strictly after the cursor along the order. The leading bound on the first key repeats what the OR
  // chain implies, so that both planners can turn it into an index range.
  const afterSql = (order: ReadonlyArray<SortKey>, after: ReadonlyArray<FieldValue>): Fragment => {
    const beyond = (key: SortKey) => (key.direction === "ASC" ? ">" : "<")
    const chain = order.map((key, i) =>
      sql.and([
        ...order.slice(0, i).map((earlier, j) => compare(earlier, "=", after[j]!)),
        compare(key, beyond(key), after[i]!)
      ])
    )
    const first = order[0]!
    return sql.and([compare(first, `${beyond(first)}=`, after[0]!), sql.or(chain)])
  }

  /** The conditions of a query (to be ANDed with the scope's) and its ORDER BY list. */
  return (query: ListQuery) => ({
    conditions: [
      ...query.filters.map((filter) => filterSql(filter)),
      ...(query.after === undefined || query.order.length === 0 ? [] : [afterSql(query.order, query.after)])
    ],
    orderBy: sql.csv(query.order.map((key) => sql`${column(key.field)} ${sql.literal(key.direction)}`))
  })
}

/** The statements of ListRuns and ListActions: one page of rows plus one, to tell whether a next page exists. */
export const makeListings = (sql: SqlClient.SqlClient) => {
  const runsQuery = makeListSql(sql, "runs")
  const actionsQuery = makeListSql(sql, "actions")

  const scopeSql = (scope: RunScope): ReadonlyArray<Fragment> => {
    switch (scope.kind) {
      case "all":
        return []
      case "project":
        return [sql`a.project = ${scope.project}`, sql`a.domain = ${scope.domain}`]
      case "taskName":
      case "taskId":
        return [
          sql`a.task_project = ${scope.project}`,
          sql`a.task_domain = ${scope.domain}`,
          sql`a.task_name = ${scope.name}`,
          ...(scope.kind === "taskId" ? [sql`a.task_version = ${scope.version}`] : [])
        ]
    }
  }

  // Roots are spelled `parent_action_name IS NULL` so that the partial `actions_root_*` indexes apply.
  const runs = (scope: RunScope, query: ListQuery): Statement<ViewRow> => {
    const { conditions, orderBy } = runsQuery(query)
    return sql<ViewRow>`${sql.literal(selectListedViews)}
      WHERE ${sql.and([sql.literal("a.parent_action_name IS NULL"), ...scopeSql(scope), ...conditions])}
      ORDER BY ${orderBy} LIMIT ${query.limit + 1}`
  }

  const actions = (run: RunKey, query: ListQuery): Statement<ActionRow> => {
    const { conditions, orderBy } = actionsQuery(query)
    const inRun = [sql`a.project = ${run.project}`, sql`a.domain = ${run.domain}`, sql`a.run_name = ${run.name}`]
    return sql<ActionRow>`${sql.literal(selectListedActions)} WHERE ${sql.and([...inRun, ...conditions])}
      ORDER BY ${orderBy} LIMIT ${query.limit + 1}`
  }

  return { runs, actions }
}
