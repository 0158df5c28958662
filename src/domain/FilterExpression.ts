import { Effect } from "effect"
import { InvalidArgument } from "./Errors.js"
import type { FilterInput } from "./ListRequest.js"

/** The functions of a filter expression, by name, as `Filter.Function` numbers. */
const functions: Readonly<Record<string, number>> = {
  eq: 0,
  ne: 1,
  gt: 2,
  gte: 3,
  lt: 4,
  lte: 5,
  contains: 6,
  value_in: 7,
  ends_with: 12,
  not_ends_with: 13,
  contains_case_insensitive: 14
}

const term = /^([a-z_]+)\(([^,()]+),(.*)\)$/

/**
 * A filter expression as ListProjects takes it (a string, in the form of Flyte's admin API):
 * `fn(field,value)` terms joined by `+`, e.g. `eq(state,0)+contains(name,ml)`; `value_in` takes values
 * separated by `;`. The empty string is no filter.
 */
export const parseFilterExpression = (text: string): Effect.Effect<ReadonlyArray<FilterInput>, InvalidArgument> =>
  Effect.forEach(text.trim() === "" ? [] : text.split("+"), (part) => {
    const match = term.exec(part.trim())
    const fn = match === null ? undefined : functions[match[1]!]
    if (match === null || fn === undefined) {
      return Effect.fail(
        new InvalidArgument({
          message: `invalid filter ${JSON.stringify(part.length <= 100 ? part : `${part.slice(0, 100)}…`)}: expected fn(field,value) with fn one of ${Object.keys(functions).join(", ")}`
        })
      )
    }
    const value = match[3]!
    return Effect.succeed({ function: fn, field: match[2]!.trim(), values: fn === 7 ? value.split(";") : [value] })
  })
