import { type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf"

/**
 * Values the protobuf wire accepts but the rest of the service cannot hold, refused up front naming the field
 * instead of failing half-way through a write:
 * - a `google.protobuf.Timestamp` or `Duration` outside the range protobuf defines for it (or with nanos of the
 *   wrong sign): it fails when the stored payload is rendered as JSON or made a JavaScript date;
 * - a string holding U+0000 or a lone surrogate (JSON lets a client send both): PostgreSQL's text and JSONB
 *   refuse them, and protobuf strings must be valid UTF-8 anyway.
 */

const TIMESTAMP = "google.protobuf.Timestamp"
const DURATION = "google.protobuf.Duration"
// Seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z; the largest duration is 10,000 years.
const minTimestampSeconds = -62_135_596_800n
const maxTimestampSeconds = 253_402_300_799n
const maxDurationSeconds = 315_576_000_000n
const maxNanos = 999_999_999

interface TimeValue {
  readonly seconds: bigint
  readonly nanos: number
}

const timestampProblem = ({ nanos, seconds }: TimeValue): string | undefined =>
  seconds < minTimestampSeconds || seconds > maxTimestampSeconds
    ? `seconds ${seconds} is outside 0001-01-01 to 9999-12-31`
    : nanos < 0 || nanos > maxNanos
    ? `nanos ${nanos} is outside 0 to ${maxNanos}`
    : undefined

const durationProblem = ({ nanos, seconds }: TimeValue): string | undefined =>
  seconds < -maxDurationSeconds || seconds > maxDurationSeconds
    ? `seconds ${seconds} is outside ±${maxDurationSeconds}`
    : nanos < -maxNanos || nanos > maxNanos
    ? `nanos ${nanos} is outside ±${maxNanos}`
    : (seconds > 0n && nanos < 0) || (seconds < 0n && nanos > 0)
    ? `seconds ${seconds} and nanos ${nanos} have different signs`
    : undefined

// ES2024's String.prototype.isWellFormed, which Node 20 has and the project's TypeScript library does not name.
const isWellFormed = (text: string): boolean => (text as unknown as { isWellFormed(): boolean }).isWellFormed()

const stringProblem = (text: string): string | undefined =>
  text.includes("\u0000")
    ? "holds the character U+0000, which cannot be stored"
    : !isWellFormed(text)
    ? "is not valid Unicode (a lone surrogate)"
    : undefined

/** What to look at in one field of a message type. */
interface Check {
  readonly field: DescField
  readonly localName: string
  readonly oneof: string | undefined
  readonly kind: "single" | "list" | "map"
  /** Strings: the field's own (scalar, list or map values), and a map's keys. */
  readonly strings: boolean
  readonly keys: boolean
  /** The message type held, when it has something to check inside. */
  readonly message: Plan | undefined
}

interface Plan {
  readonly schema: DescMessage
  checks: ReadonlyArray<Check>
}

const plans = new Map<string, Plan>()

// protobuf-es holds wrapper types and Struct/Value/ListValue as plain values, not messages: strings in them are
// checked as JSON-like values.
const heldAsPlainValue = (message: DescMessage): boolean =>
  message.file.name.startsWith("google/protobuf/") &&
  message.typeName !== TIMESTAMP && message.typeName !== DURATION && message.typeName !== "google.protobuf.Any"

const isString = (field: DescField): boolean =>
  (field.fieldKind === "scalar" || field.fieldKind === "list" || field.fieldKind === "map") &&
  "scalar" in field && field.scalar === ScalarType.STRING

const messageOf = (field: DescField): DescMessage | undefined =>
  (field.fieldKind === "message" || (field.fieldKind === "list" && field.listKind === "message") ||
      (field.fieldKind === "map" && field.mapKind === "message"))
    ? field.message
    : undefined

/** The checks of a type, built once; a type that holds nothing to check has none (cycles are resolved lazily). */
const planOf = (schema: DescMessage): Plan => {
  const known = plans.get(schema.typeName)
  if (known !== undefined) return known
  const plan: Plan = { schema, checks: [] }
  plans.set(schema.typeName, plan)
  const checks: Array<Check> = []
  for (const field of schema.fields) {
    const message = messageOf(field)
    const plain = message !== undefined && heldAsPlainValue(message)
    const inner = message === undefined || plain ? undefined : planOf(message)
    const strings = isString(field) || plain
    const keys = field.fieldKind === "map" && field.mapKey === ScalarType.STRING
    if (strings || keys || inner !== undefined) {
      checks.push({
        field,
        localName: field.localName,
        oneof: field.oneof?.localName,
        kind: field.fieldKind === "list" ? "list" : field.fieldKind === "map" ? "map" : "single",
        strings,
        keys,
        message: inner
      })
    }
  }
  plan.checks = checks
  return plan
}

const valueOf = (message: Record<string, unknown>, check: Check): unknown => {
  if (check.oneof === undefined) return message[check.localName]
  const chosen = message[check.oneof] as { case?: string; value?: unknown } | undefined
  return chosen?.case === check.localName ? chosen.value : undefined
}

interface Found {
  readonly path: Array<string>
  readonly problem: string
}

/** A plain value (a wrapper's or a Struct's) with a string that cannot be held. */
const plainProblem = (value: unknown): string | undefined => {
  if (typeof value === "string") return stringProblem(value)
  if (typeof value !== "object" || value === null) return undefined
  for (const [key, item] of Array.isArray(value) ? value.entries() : Object.entries(value)) {
    const problem = (typeof key === "string" ? stringProblem(key) : undefined) ?? plainProblem(item)
    if (problem !== undefined) return problem
  }
  return undefined
}

// The path segment of a value: its field's name, with the list index or map key it sits at (built only for the
// value found wrong, as most requests have none).
const segmentOf = (field: DescField, at: number | string | undefined): string =>
  at === undefined ? field.name : `${field.name}[${at}]`

const checkValue = (check: Check, value: unknown, at: number | string | undefined): Found | undefined => {
  const found = check.message !== undefined
    ? checkMessage(check.message, value as Record<string, unknown>)
    : check.strings
    ? problemAt(typeof value === "string" ? stringProblem(value) : plainProblem(value))
    : undefined
  if (found !== undefined) found.path.unshift(segmentOf(check.field, at))
  return found
}

const problemAt = (problem: string | undefined): Found | undefined =>
  problem === undefined ? undefined : { path: [], problem }

const checkMessage = (plan: Plan, message: Record<string, unknown>): Found | undefined => {
  if (plan.schema.typeName === TIMESTAMP || plan.schema.typeName === DURATION) {
    const time = message as unknown as TimeValue
    return problemAt(plan.schema.typeName === TIMESTAMP ? timestampProblem(time) : durationProblem(time))
  }
  for (const check of plan.checks) {
    const value = valueOf(message, check)
    if (value === undefined || value === null) continue
    let found: Found | undefined
    if (check.kind === "list") {
      const items = value as ReadonlyArray<unknown>
      for (let index = 0; found === undefined && index < items.length; index++) found = checkValue(check, items[index], index)
    } else if (check.kind === "map") {
      for (const key in value as Record<string, unknown>) {
        const keyProblem = check.keys ? stringProblem(key) : undefined
        found = keyProblem !== undefined
          ? { path: [`${check.field.name} key`], problem: keyProblem }
          : checkValue(check, (value as Record<string, unknown>)[key], key)
        if (found !== undefined) break
      }
    } else {
      found = checkValue(check, value, undefined)
    }
    if (found !== undefined) return found
  }
  return undefined
}

/** The first value of `message` the service cannot hold (its field path and what is wrong), if there is one. */
export const illFormedValue = (
  schema: DescMessage,
  message: object
): { readonly path: string; readonly problem: string } | undefined => {
  const found = checkMessage(planOf(schema), message as Record<string, unknown>)
  return found === undefined ? undefined : { path: found.path.join("."), problem: found.problem }
}
