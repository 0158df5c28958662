import type { SqlClient } from "@effect/sql"
import type { Fragment } from "@effect/sql/Statement"
import type { FilterFunction } from "../../domain/ListQuery.js"

/** The filter functions that are a plain comparison, as their SQL operator (the run lists' and the catalog's). */
export const comparisons: Partial<Record<FilterFunction, string>> = {
  EQUAL: "=",
  NOT_EQUAL: "<>",
  GREATER_THAN: ">",
  GREATER_THAN_OR_EQUAL: ">=",
  LESS_THAN: "<",
  LESS_THAN_OR_EQUAL: "<="
}

export const likeEscaped = (value: string) => value.replace(/[\\%_]/g, (c) => `\\${c}`)
const globEscaped = (value: string) => value.replace(/[*?[]/g, (c) => `[${c}]`)

/**
 * `text` contains `value` (or ends with it), case-sensitively, with `%`, `_`, `\`, `*`, `?` and `[` taken
 * literally. SQLite's LIKE ignores ASCII case, so there it is a GLOB.
 */
export const matchesSql = (
  sql: SqlClient.SqlClient,
  text: Fragment,
  value: string,
  where: "contains" | "ends"
): Fragment =>
  sql.onDialectOrElse({
    pg: () => sql`${text} LIKE ${`%${likeEscaped(value)}${where === "contains" ? "%" : ""}`} ESCAPE '\\'`,
    orElse: () => sql`${text} GLOB ${`*${globEscaped(value)}${where === "contains" ? "*" : ""}`}`
  })

/** `text` contains `value`, ignoring ASCII case. */
export const containsIgnoringCaseSql = (sql: SqlClient.SqlClient, text: Fragment, value: string): Fragment =>
  sql`LOWER(${text}) LIKE LOWER(${`%${likeEscaped(value)}%`}) ESCAPE '\\'`
