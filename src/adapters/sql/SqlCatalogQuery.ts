import type { SqlClient } from "@effect/sql"
import type { Fragment } from "@effect/sql/Statement"
import type { CatalogQuery, CatalogSchema } from "../../domain/CatalogQuery.js"
import type { FieldValue, SortDirection } from "../../domain/ListQuery.js"
import { comparisons, containsIgnoringCaseSql, matchesSql } from "./SqlFilterTerms.js"

/**
 * A `CatalogQuery` as SQL: its filters and cursor as conditions (to be ANDed with a scope's) and its order, over
 * the column expression given for each field. Text compares as the database does (the databases here collate by
 * code point, as the memory store does); every value is a bound parameter.
 */
export const catalogSql = <F extends string>(
  sql: SqlClient.SqlClient,
  schema: CatalogSchema<F>,
  columns: Readonly<Record<F, string>>,
  query: CatalogQuery<F>
): { readonly conditions: ReadonlyArray<Fragment>; readonly orderBy: Fragment } => {
  const column = (field: F) => sql.literal(columns[field])
  const param = (field: F, value: FieldValue): FieldValue =>
    schema.fields[field].kind === "time" && typeof value === "number" ? new Date(value).toISOString() : value
  const matches = (field: F, value: string, ends: boolean) => matchesSql(sql, column(field), value, ends ? "ends" : "contains")

  const filters = query.filters.map(({ field, fn, values }): Fragment => {
    const first = values[0]
    if (first === undefined) return sql.literal("1 = 0")
    const operator = comparisons[fn]
    if (operator !== undefined) return sql`${column(field)} ${sql.literal(operator)} ${param(field, first)}`
    switch (fn) {
      case "VALUE_IN":
        return sql`${column(field)} IN ${sql.in(values.map((value) => param(field, value)))}`
      case "CONTAINS":
        return matches(field, String(first), false)
      case "CONTAINS_CASE_INSENSITIVE":
        return containsIgnoringCaseSql(sql, column(field), String(first))
      case "ENDS_WITH":
        return matches(field, String(first), true)
      default:
        return sql`NOT (${matches(field, String(first), true)})`
    }
  })

  const beyond = (direction: SortDirection) => (direction === "ASC" ? ">" : "<")
  const after = query.after
  const cursor = after === undefined ? [] : [
    sql.or(query.order.map((key, i) =>
      sql.and([
        ...query.order.slice(0, i).map((earlier, j) => sql`${column(earlier.field)} = ${param(earlier.field, after[j]!)}`),
        sql`${column(key.field)} ${sql.literal(beyond(key.direction))} ${param(key.field, after[i]!)}`
      ])
    ))
  ]
  return {
    conditions: [...filters, ...cursor],
    orderBy: sql.csv(query.order.map((key) => sql`${column(key.field)} ${sql.literal(key.direction)}`))
  }
}
