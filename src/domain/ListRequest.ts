import { Effect } from "effect"
import { InvalidArgument, quoted } from "./Errors.js"
import type {
  FieldValue,
  FilterFunction,
  ListField,
  ListFilter,
  ListQuery,
  SortDirection,
  SortKey
} from "./ListQuery.js"
import { listFields } from "./ListQuery.js"
import { decodeToken } from "./ListToken.js"
import { ActionPhase, ActionType, RunSource } from "./Phase.js"

export { encodeToken } from "./ListToken.js"

/** `flyteidl2.common.Sort`, its direction mapped (DESCENDING is the zero value). */
export interface SortInput {
  readonly key: string
  readonly direction: SortDirection
}

/** `flyteidl2.common.Filter`: `function` is the `Filter.Function` number, values are strings as sent. */
export interface FilterInput {
  readonly function: number
  readonly field: string
  readonly values: ReadonlyArray<string>
}

/** `flyteidl2.common.ListRequest` as plain data. */
export interface ListRequestInput {
  readonly limit: number
  readonly token: string
  /** The deprecated `sort_by`, the one every real client sends. */
  readonly sortBy: SortInput | undefined
  readonly sortByFields: ReadonlyArray<SortInput>
  readonly filters: ReadonlyArray<FilterInput>
  readonly rawFilters: ReadonlyArray<string>
}

export interface ListRequestOptions {
  /** The fields this list may filter and sort on. */
  readonly allowedFields: ReadonlySet<ListField>
}

export const defaultLimit = 50
export const maxLimit = 200

/** At most this many filters, and filter values in all, in one list request: each becomes a term of one SQL
 * statement, which a database cannot prepare past a size of its own. */
export const maxFilters = 50
export const maxFilterValues = 1000

const allFields = Object.keys(listFields) as ReadonlyArray<ListField>

export const actionListFields: ReadonlySet<ListField> = new Set(allFields)
export const runListFields: ReadonlySet<ListField> = new Set(allFields.filter((field) => field !== "parent_name"))

/** Newest first. */
export const defaultSort: SortKey = { field: "created_at", direction: "DESC" }

/** Appended after the requested keys so that the order is total (the last four are the unique key). */
const tieBreakers: ReadonlyArray<ListField> = ["created_at", "project", "domain", "run_name", "name"]

/** `Filter.Function` of 2.0.16 by number; 8-11 are not in it. */
export const filterFunctions: ReadonlyMap<number, FilterFunction> = new Map([
  [0, "EQUAL"],
  [1, "NOT_EQUAL"],
  [2, "GREATER_THAN"],
  [3, "GREATER_THAN_OR_EQUAL"],
  [4, "LESS_THAN"],
  [5, "LESS_THAN_OR_EQUAL"],
  [6, "CONTAINS"],
  [7, "VALUE_IN"],
  [12, "ENDS_WITH"],
  [13, "NOT_ENDS_WITH"],
  [14, "CONTAINS_CASE_INSENSITIVE"]
])

export const textFunctions: ReadonlySet<FilterFunction> = new Set<FilterFunction>([
  "CONTAINS",
  "CONTAINS_CASE_INSENSITIVE",
  "ENDS_WITH",
  "NOT_ENDS_WITH"
])

const invalid = (message: string) => Effect.fail(new InvalidArgument({ message }))

const isListField = (name: string): name is ListField => Object.hasOwn(listFields, name)

export const parseLimit = (limit: number): Effect.Effect<number, InvalidArgument> =>
  !Number.isInteger(limit) || limit < 0
    ? invalid(`invalid limit ${limit}: must be a whole number from 0 to ${maxLimit}`)
    : limit > maxLimit
    ? invalid(`invalid limit ${limit}: exceeds maximum of ${maxLimit}`)
    : Effect.succeed(limit === 0 ? defaultLimit : limit)

const parseField = (
  name: string,
  use: "sort" | "filter",
  allowed: ReadonlySet<ListField>
): Effect.Effect<ListField, InvalidArgument> =>
  isListField(name) && allowed.has(name)
    ? Effect.succeed(name)
    : invalid(`invalid ${use} field ${quoted(name)}: expected one of ${[...allowed].join(", ")}`)

const parseOrder = (
  input: ListRequestInput,
  allowed: ReadonlySet<ListField>
): Effect.Effect<ReadonlyArray<SortKey>, InvalidArgument> =>
  Effect.gen(function*() {
    const requested = input.sortByFields.length > 0
      ? input.sortByFields
      : input.sortBy !== undefined && input.sortBy.key !== ""
      ? [input.sortBy]
      : []
    const order: Array<SortKey> = []
    const has = (field: ListField) => order.some((key) => key.field === field)
    for (const sort of requested) {
      const field = yield* parseField(sort.key, "sort", allowed)
      // A repeated key could never decide anything; the first occurrence wins.
      if (!has(field)) order.push({ field, direction: sort.direction })
    }
    if (order.length === 0) order.push(defaultSort)
    const direction = order[0]!.direction
    for (const field of tieBreakers) {
      if (!has(field)) order.push({ field, direction })
    }
    return order
  })

const enumParser = (table: Readonly<Record<string, number>>, prefixes: ReadonlyArray<string>) => {
  const numbers = new Set(Object.values(table))
  return (text: string): number | undefined => {
    if (/^[0-9]+$/.test(text)) return numbers.has(Number(text)) ? Number(text) : undefined
    const upper = text.toUpperCase()
    const prefix = prefixes.find((p) => upper.startsWith(p))
    const name = prefix === undefined ? upper : upper.slice(prefix.length)
    return Object.hasOwn(table, name) ? table[name] : undefined
  }
}

const rfc3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/

const daysInMonth = (year: number, month: number): number =>
  month === 2
    ? (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28
    : [4, 6, 9, 11].includes(month)
    ? 30
    : 31

/** An RFC 3339 time (`Z` or a numeric offset, any fraction) as epoch milliseconds, truncated to the ms. */
export const parseTime = (text: string): number | undefined => {
  const match = rfc3339.exec(text)
  if (match === null) return undefined
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map((part) => Number(part)) as [
    number,
    number,
    number,
    number,
    number,
    number
  ]
  const offsetHours = Number(match[9] ?? 0)
  const offsetMinutes = Number(match[10] ?? 0)
  const valid = month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(year, month) && hour <= 23 &&
    minute <= 59 && second <= 60 && offsetHours <= 23 && offsetMinutes <= 59
  if (!valid) return undefined
  const date = new Date(0)
  // setUTCFullYear, unlike Date.UTC, does not read years 0-99 as 1900-1999.
  date.setUTCFullYear(year, month - 1, day)
  date.setUTCHours(hour, minute, second, Number((match[7] ?? "").slice(0, 3).padEnd(3, "0")))
  const sign = match[8] === "-" ? -1 : 1
  return date.getTime() - sign * (offsetHours * 60 + offsetMinutes) * 60_000
}

interface ValueParser {
  readonly parse: (text: string) => FieldValue | undefined
  readonly expected: string
}

const numberParsers: Partial<Record<ListField, ValueParser>> = {
  phase: {
    parse: enumParser(ActionPhase, ["ACTION_PHASE_", "PHASE_"]),
    expected: "a phase number 0-9 or a name like RUNNING, PHASE_RUNNING or ACTION_PHASE_RUNNING"
  },
  action_type: {
    parse: enumParser(ActionType, ["ACTION_TYPE_"]),
    expected: "an action type number 0-3 or a name like TASK or ACTION_TYPE_TASK"
  },
  run_source: {
    parse: enumParser(RunSource, ["RUN_SOURCE_"]),
    expected: "a run source number 0-3 or a name like CLI or RUN_SOURCE_CLI"
  },
  duration_ms: {
    parse: (text) => (/^[0-9]+$/.test(text) && Number.isSafeInteger(Number(text)) ? Number(text) : undefined),
    expected: "a whole number of milliseconds, 0 or more"
  }
}

const textParser: ValueParser = { parse: (text) => text, expected: "text" }
const timeParser: ValueParser = {
  parse: parseTime,
  expected: "an RFC 3339 time like 2025-01-02T03:04:05Z or 2025-01-02T03:04:05.123456+00:00"
}

const valueParser = (field: ListField): ValueParser =>
  listFields[field] === "text" ? textParser : listFields[field] === "time" ? timeParser : numberParsers[field]!

const parseValue = (field: ListField, text: string): Effect.Effect<FieldValue, InvalidArgument> => {
  const parser = valueParser(field)
  const value = parser.parse(text)
  return value === undefined
    ? invalid(`invalid value ${quoted(text)} for field "${field}": expected ${parser.expected}`)
    : Effect.succeed(value)
}

const parseFilter = (
  filter: FilterInput,
  allowed: ReadonlySet<ListField>
): Effect.Effect<ListFilter, InvalidArgument> =>
  Effect.gen(function*() {
    const field = yield* parseField(filter.field, "filter", allowed)
    const fn = filterFunctions.get(filter.function)
    if (fn === undefined) return yield* invalid(`unsupported filter function ${filter.function} on field "${field}"`)
    const count = filter.values.length
    if (count === 0) return yield* invalid(`filter ${fn} on field "${field}" has no values`)
    if (fn !== "VALUE_IN" && count > 1) {
      return yield* invalid(`filter ${fn} on field "${field}" takes exactly one value, got ${count}`)
    }
    if (textFunctions.has(fn) && listFields[field] !== "text") {
      return yield* invalid(`filter ${fn} works only on text fields, not on "${field}"`)
    }
    const values = yield* Effect.forEach(filter.values, (text) => parseValue(field, text))
    return { field, fn, values }
  })

/** A client's list request as a `ListQuery` (SPEC 7), checking limit, sort, filters and token in that order. */
export const parseListRequest = (
  input: ListRequestInput,
  options: ListRequestOptions
): Effect.Effect<ListQuery, InvalidArgument> =>
  Effect.gen(function*() {
    const limit = yield* parseLimit(input.limit)
    const order = yield* parseOrder(input, options.allowedFields)
    if (input.rawFilters.length > 0) return yield* invalid("raw_filters are not supported")
    if (input.filters.length > maxFilters) {
      return yield* invalid(`too many filters: ${input.filters.length}, at most ${maxFilters}`)
    }
    const values = input.filters.reduce((sum, filter) => sum + filter.values.length, 0)
    if (values > maxFilterValues) {
      return yield* invalid(`too many filter values: ${values} in all, at most ${maxFilterValues}`)
    }
    const filters = yield* Effect.forEach(input.filters, (filter) => parseFilter(filter, options.allowedFields))
    const after = yield* decodeToken({ order, filters }, input.token)
    return { filters, order, limit, after }
  })
