import type { ActionRecord, RunRecord } from "../../domain/Records.js"
import {
  compareValues,
  cursorOf,
  type FieldValue,
  fieldValue,
  type ListFilter,
  type ListQuery,
  type Page,
  passesFilter,
  type SortKey
} from "../../domain/ListQuery.js"

/**
 * The reference semantics of a list query, evaluated on records: the SQL adapter must answer the same.
 * A missing value reads as `""` or `-1` (see `fieldValue`), so it passes `NOT_EQUAL`, `NOT_ENDS_WITH` and
 * `LESS_THAN` of anything larger. Substring functions compare the value's text (numbers in decimal); text
 * compares by UTF-16 code unit, never by a locale's collation.
 */
export const matchesFilter = (filter: ListFilter, action: ActionRecord, run?: RunRecord): boolean =>
  passesFilter(filter, fieldValue(filter.field, action, run))

/** Compares two cursors along `order`, each key in its direction. */
export const compareCursors = (
  order: ReadonlyArray<SortKey>,
  a: ReadonlyArray<FieldValue>,
  b: ReadonlyArray<FieldValue>
): number => {
  for (let i = 0; i < order.length; i++) {
    const left = a[i]
    const right = b[i]
    if (left === undefined || right === undefined) continue
    const c = compareValues(left, right)
    if (c !== 0) return order[i]!.direction === "DESC" ? -c : c
  }
  return 0
}

/** A row as lists see it: the action whose fields are read, and its run for run-level fields. */
export interface ListRow<A> {
  readonly item: A
  readonly action: ActionRecord
  readonly run: RunRecord | undefined
}

/** Filters, orders and pages rows: those passing every filter, in `query.order`, after `query.after`. */
export const pageOf = <A>(rows: ReadonlyArray<ListRow<A>>, query: ListQuery): Page<A> => {
  const sorted = rows
    .filter((row) => query.filters.every((filter) => matchesFilter(filter, row.action, row.run)))
    .map((row) => ({ row, cursor: cursorOf(query.order, row.action, row.run) }))
    .sort((a, b) => compareCursors(query.order, a.cursor, b.cursor))
  const after = query.after
  const remaining = after === undefined
    ? sorted
    : sorted.filter((entry) => compareCursors(query.order, entry.cursor, after) > 0)
  const taken = remaining.slice(0, Math.max(0, query.limit))
  const last = taken[taken.length - 1]
  return {
    items: taken.map((entry) => entry.row.item),
    next: remaining.length > taken.length && last !== undefined ? last.cursor : undefined
  }
}
