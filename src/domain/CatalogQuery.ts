import { Effect } from "effect"
import { InvalidArgument, quoted } from "./Errors.js"
import type { FieldValue, FilterFunction, Page, SortDirection } from "./ListQuery.js"
import { compareValues, passesFilter } from "./ListQuery.js"
import {
  filterFunctions,
  type ListRequestInput,
  maxFilters,
  maxFilterValues,
  parseLimit,
  parseTime,
  textFunctions
} from "./ListRequest.js"
import { cursorToken, orderAndFilters, tokenCursor } from "./ListToken.js"

/**
 * The list query model of the catalog lists (projects, tasks, task versions): as SPEC 7 for runs (the same
 * filter functions, limits, sorts and keyset tokens), over each list's own fields.
 */
export type CatalogKind = "text" | "number" | "time"

export interface CatalogField {
  readonly kind: CatalogKind
  /** For enum-like numbers: reads a value as a client writes it (a number or a name). */
  readonly parse?: (text: string) => number | undefined
  readonly expected?: string
}

export interface CatalogSortKey<F extends string> {
  readonly field: F
  readonly direction: SortDirection
}

export interface CatalogFilter<F extends string> {
  readonly field: F
  readonly fn: FilterFunction
  readonly values: ReadonlyArray<FieldValue>
}

export interface CatalogSchema<F extends string> {
  /** Names the list in tokens, so a token of one list is refused by another. */
  readonly list: string
  readonly fields: Readonly<Record<F, CatalogField>>
  /** Other names a client may use for a field (e.g. `identifier` for `id`). */
  readonly aliases?: Readonly<Record<string, F>>
  /** When the request asks for no order. */
  readonly defaultOrder: ReadonlyArray<CatalogSortKey<F>>
  /** Appended after the requested keys, in the first key's direction, so that the order is total. */
  readonly uniqueKey: ReadonlyArray<F>
}

export interface CatalogQuery<F extends string> {
  readonly filters: ReadonlyArray<CatalogFilter<F>>
  readonly order: ReadonlyArray<CatalogSortKey<F>>
  readonly limit: number
  /** The `order` values of the last row of the previous page; rows strictly after it. */
  readonly after: ReadonlyArray<FieldValue> | undefined
}

const invalid = (message: string) => Effect.fail(new InvalidArgument({ message }))



const fieldOf = <F extends string>(schema: CatalogSchema<F>, name: string, use: "sort" | "filter") => {
  const field = Object.hasOwn(schema.fields, name) ? (name as F) : schema.aliases?.[name]
  return field === undefined
    ? invalid(`invalid ${use} field ${quoted(name)}: expected one of ${Object.keys(schema.fields).join(", ")}`)
    : Effect.succeed(field)
}

const valueOf = (field: string, spec: CatalogField, text: string): Effect.Effect<FieldValue, InvalidArgument> => {
  const parsed = spec.kind === "text"
    ? text
    : spec.kind === "time"
    ? parseTime(text)
    : spec.parse !== undefined
    ? spec.parse(text)
    : /^-?[0-9]+$/.test(text) && Number.isSafeInteger(Number(text))
    ? Number(text)
    : undefined
  const expected = spec.expected ??
    (spec.kind === "time" ? "an RFC 3339 time like 2025-01-02T03:04:05Z" : spec.kind === "number" ? "a whole number" : "text")
  return parsed === undefined
    ? invalid(`invalid value ${quoted(text)} for field "${field}": expected ${expected}`)
    : Effect.succeed(parsed)
}

const orderOf = <F extends string>(schema: CatalogSchema<F>, input: ListRequestInput) =>
  Effect.gen(function*() {
    const requested = input.sortByFields.length > 0
      ? input.sortByFields
      : input.sortBy !== undefined && input.sortBy.key !== ""
      ? [input.sortBy]
      : []
    const order: Array<CatalogSortKey<F>> = []
    const has = (field: F) => order.some((key) => key.field === field)
    for (const sort of requested) {
      const field = yield* fieldOf(schema, sort.key, "sort")
      if (!has(field)) order.push({ field, direction: sort.direction })
    }
    if (order.length === 0) order.push(...schema.defaultOrder)
    const direction = order[0]!.direction
    for (const field of schema.uniqueKey) {
      if (!has(field)) order.push({ field, direction })
    }
    return order
  })

/** One filter as sent (`Filter.Function` number, field name, values as text), checked against the schema. */
export const parseCatalogFilter = <F extends string>(
  schema: CatalogSchema<F>,
  filter: { readonly function: number; readonly field: string; readonly values: ReadonlyArray<string> }
): Effect.Effect<CatalogFilter<F>, InvalidArgument> =>
  Effect.gen(function*() {
    const field = yield* fieldOf(schema, filter.field, "filter")
    const spec = schema.fields[field]
    const fn = filterFunctions.get(filter.function)
    if (fn === undefined) return yield* invalid(`unsupported filter function ${filter.function} on field "${field}"`)
    if (filter.values.length === 0) return yield* invalid(`filter ${fn} on field "${field}" has no values`)
    if (fn !== "VALUE_IN" && filter.values.length > 1) {
      return yield* invalid(`filter ${fn} on field "${field}" takes exactly one value, got ${filter.values.length}`)
    }
    if (textFunctions.has(fn) && spec.kind !== "text") {
      return yield* invalid(`filter ${fn} works only on text fields, not on "${field}"`)
    }
    const values = yield* Effect.forEach(filter.values, (text) => valueOf(field, spec, text))
    return { field, fn, values }
  })

const signature = <F extends string>(
  schema: CatalogSchema<F>,
  query: Pick<CatalogQuery<F>, "order" | "filters">
): string => `${schema.list}/${orderAndFilters(query)}`

/** The token of the page after the row whose values along `query.order` are `cursor` (see ListToken). */
export const encodeCatalogToken = <F extends string>(
  schema: CatalogSchema<F>,
  query: CatalogQuery<F>,
  cursor: ReadonlyArray<FieldValue> | undefined
): string => cursor === undefined ? "" : cursorToken(signature(schema, query), cursor)

const decodeToken = <F extends string>(
  schema: CatalogSchema<F>,
  query: Pick<CatalogQuery<F>, "order" | "filters">,
  token: string
): Effect.Effect<ReadonlyArray<FieldValue> | undefined, InvalidArgument> => {
  if (token === "") return Effect.succeed(undefined)
  const cursor = tokenCursor(
    signature(schema, query),
    token,
    query.order.length,
    (value, i) => (schema.fields[query.order[i]!.field].kind === "text") === (typeof value === "string")
  )
  return cursor !== undefined ? Effect.succeed(cursor) : invalid("invalid token")
}

/**
 * A client's list request as a `CatalogQuery`: limit, order, filters (those of the request, then `extra`, e.g.
 * a request's known filters, already parsed), then the token, which must have been made for the same order and
 * filters.
 */
export const parseCatalogRequest = <F extends string>(
  schema: CatalogSchema<F>,
  input: ListRequestInput,
  extra: ReadonlyArray<CatalogFilter<F>> = []
): Effect.Effect<CatalogQuery<F>, InvalidArgument> =>
  Effect.gen(function*() {
    const limit = yield* parseLimit(input.limit)
    const order = yield* orderOf(schema, input)
    if (input.rawFilters.length > 0) return yield* invalid("raw_filters are not supported")
    // As the run lists: each filter is a term of one SQL statement, which a database cannot prepare past a size.
    if (input.filters.length + extra.length > maxFilters) {
      return yield* invalid(`too many filters: ${input.filters.length + extra.length}, at most ${maxFilters}`)
    }
    const values = [...input.filters, ...extra].reduce((sum, filter) => sum + filter.values.length, 0)
    if (values > maxFilterValues) return yield* invalid(`too many filter values: ${values} in all, at most ${maxFilterValues}`)
    const parsed = yield* Effect.forEach(input.filters, (filter) => parseCatalogFilter(schema, filter))
    const filters = [...parsed, ...extra]
    const after = yield* decodeToken(schema, { order, filters }, input.token)
    return { filters, order, limit, after }
  })


/** Filters, orders and pages rows in memory, each field read with `valueOf`. */
export const catalogPage = <A, F extends string>(
  rows: ReadonlyArray<A>,
  query: CatalogQuery<F>,
  valueOf: (row: A, field: F) => FieldValue
): Page<A> => {
  const compare = (a: ReadonlyArray<FieldValue>, b: ReadonlyArray<FieldValue>) => {
    for (let i = 0; i < query.order.length; i++) {
      const c = compareValues(a[i]!, b[i]!)
      if (c !== 0) return query.order[i]!.direction === "DESC" ? -c : c
    }
    return 0
  }
  const after = query.after
  const sorted = rows
    .filter((row) => query.filters.every((filter) => passesFilter(filter, valueOf(row, filter.field))))
    .map((row) => ({ row, cursor: query.order.map((key) => valueOf(row, key.field)) }))
    .filter((entry) => after === undefined || compare(entry.cursor, after) > 0)
    .sort((a, b) => compare(a.cursor, b.cursor))
  const taken = sorted.slice(0, query.limit)
  const last = taken.at(-1)
  return {
    items: taken.map((entry) => entry.row),
    next: sorted.length > taken.length && last !== undefined ? last.cursor : undefined
  }
}
