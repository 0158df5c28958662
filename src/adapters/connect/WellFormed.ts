import type { DescField, DescMessage } from "@bufbuild/protobuf"

/**
 * Values the protobuf wire accepts but the rest of the service cannot hold: a `google.protobuf.Timestamp` or
 * `Duration` outside the range protobuf defines for it (or with nanos of the wrong sign) decodes fine, then
 * fails when the stored payload is rendered as JSON or made a JavaScript date. Such a request is refused
 * up front, naming the field, instead of failing half-way through a write.
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

// Which message types can hold a Timestamp or Duration somewhere inside (the walk skips the others).
const holdsTime = new Map<string, boolean>()

// protobuf-es holds wrapper types and Struct/Value/ListValue fields as plain values, not messages.
const heldAsPlainValue = (message: DescMessage): boolean =>
  message.file.name.startsWith("google/protobuf/") &&
  message.typeName !== TIMESTAMP && message.typeName !== DURATION && message.typeName !== "google.protobuf.Any"

const messageOf = (field: DescField): DescMessage | undefined =>
  field.fieldKind === "message"
    ? field.message
    : field.fieldKind === "list" && field.listKind === "message"
    ? field.message
    : field.fieldKind === "map" && field.mapKind === "message"
    ? field.message
    : undefined

const canHoldTime = (schema: DescMessage): boolean => {
  const known = holdsTime.get(schema.typeName)
  if (known !== undefined) return known
  // Every type reachable from this one, searched once; cycles (a literal holding literals) end at the seen set.
  const seen = new Set<string>([schema.typeName])
  const queue = [schema]
  let holds = false
  while (queue.length > 0 && !holds) {
    const next = queue.pop()!
    if (next.typeName === TIMESTAMP || next.typeName === DURATION) holds = true
    for (const field of next.fields) {
      const message = messageOf(field)
      if (message === undefined || heldAsPlainValue(message) || seen.has(message.typeName)) continue
      seen.add(message.typeName)
      queue.push(message)
    }
  }
  holdsTime.set(schema.typeName, holds)
  return holds
}

const valueOf = (message: Record<string, unknown>, field: DescField): unknown => {
  if (field.oneof === undefined) return message[field.localName]
  const chosen = message[field.oneof.localName] as { case?: string; value?: unknown } | undefined
  return chosen?.case === field.localName ? chosen.value : undefined
}

const check = (schema: DescMessage, message: Record<string, unknown>): { path: Array<string>; problem: string } | undefined => {
  if (schema.typeName === TIMESTAMP || schema.typeName === DURATION) {
    const time = message as unknown as TimeValue
    const problem = schema.typeName === TIMESTAMP ? timestampProblem(time) : durationProblem(time)
    return problem === undefined ? undefined : { path: [], problem }
  }
  for (const field of schema.fields) {
    const inner = messageOf(field)
    if (inner === undefined || heldAsPlainValue(inner) || !canHoldTime(inner)) continue
    const value = valueOf(message, field)
    if (value === undefined || value === null) continue
    const entries: Array<[string, unknown]> = field.fieldKind === "list"
      ? (value as Array<unknown>).map((item, index) => [`${field.name}[${index}]`, item])
      : field.fieldKind === "map"
      ? Object.entries(value as Record<string, unknown>).map(([key, item]) => [`${field.name}[${key}]`, item])
      : [[field.name, value]]
    for (const [segment, item] of entries) {
      const found = check(inner, item as Record<string, unknown>)
      if (found !== undefined) {
        found.path.unshift(segment)
        return found
      }
    }
  }
  return undefined
}

/** The first value of `message` the service cannot hold (its field path and what is wrong), if there is one. */
export const illFormedValue = (
  schema: DescMessage,
  message: object
): { readonly path: string; readonly problem: string } | undefined => {
  if (!canHoldTime(schema)) return undefined
  const found = check(schema, message as Record<string, unknown>)
  return found === undefined ? undefined : { path: found.path.join("."), problem: found.problem }
}
