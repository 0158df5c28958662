import { type DescField, type DescMessage, type MessageShape, ScalarType, toBinary, toJsonString } from "@bufbuild/protobuf"
import { reflect, type ReflectList, type ReflectMessage } from "@bufbuild/protobuf/reflect"
import { gzipSync } from "node:zlib"

/**
 * Request bodies a careless or hostile client sends: random bytes, valid requests with bytes changed, valid
 * shapes holding values no one expects (huge strings, long lists, numbers and enums out of range, times
 * outside any calendar), nesting deeper than any parser's stack, and broken compression. Every draw comes from
 * one seeded generator, so a failing case is found again with the same seed.
 */

/** A seeded source of numbers (mulberry32). */
export const seeded = (seed: number) => {
  let state = seed >>> 0
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (max: number): number => Math.floor(next() * max)
  const pick = <A>(items: ReadonlyArray<A>): A => items[int(items.length)]!
  const bytes = (length: number): Uint8Array => Uint8Array.from({ length }, () => int(256))
  return { next, int, pick, bytes }
}

export type Rng = ReturnType<typeof seeded>

const hostileStrings = (rng: Rng): string =>
  rng.pick([
    () => "x".repeat(1 + rng.int(3) * 50_000),
    () => "é\u0000\ud800%' OR 1=1 --".repeat(1 + rng.int(50)),
    () => "\ud83d".repeat(1 + rng.int(5_000)),
    () => "../".repeat(1 + rng.int(500)),
    () => "",
    () => " ",
    () => String.fromCharCode(...rng.bytes(1 + rng.int(200)))
  ])()

const intBounds: Partial<Record<ScalarType, ReadonlyArray<number>>> = {
  [ScalarType.INT32]: [-2147483648, 2147483647, -1, 0],
  [ScalarType.SINT32]: [-2147483648, 2147483647, -1],
  [ScalarType.SFIXED32]: [-2147483648, 2147483647],
  [ScalarType.UINT32]: [4294967295, 2147483648, 0],
  [ScalarType.FIXED32]: [4294967295, 0]
}
const bigBounds: ReadonlyArray<bigint> = [-(2n ** 63n), 2n ** 63n - 1n, -1n, 9_000_000_000_000n, -9_000_000_000_000n]
const unsignedBigBounds: ReadonlyArray<bigint> = [2n ** 64n - 1n, 2n ** 63n, 9_000_000_000_000n]

const scalarValue = (rng: Rng, scalar: ScalarType): unknown => {
  switch (scalar) {
    case ScalarType.STRING:
      return hostileStrings(rng)
    case ScalarType.BYTES:
      return rng.bytes(rng.int(2) === 0 ? 10 : 50_000)
    case ScalarType.BOOL:
      return rng.int(2) === 0
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return rng.pick([Number.NaN, Infinity, -Infinity, -0, 1e308, -1e-308])
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return rng.pick(bigBounds)
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return rng.pick(unsignedBigBounds)
    default:
      return rng.pick(intBounds[scalar] ?? [0])
  }
}

const enumValue = (rng: Rng): number => rng.pick([9999, 42, -1, 2147483647, -2147483648, 10, 0])

const timeMessage = (rng: Rng, message: ReflectMessage): void => {
  const seconds = message.desc.fields.find((field) => field.name === "seconds")!
  const nanos = message.desc.fields.find((field) => field.name === "nanos")!
  message.set(seconds, rng.pick([9_000_000_000_000n, -9_000_000_000_000n, 253402300800n, -62135596801n, 1n, -1n]))
  message.set(nanos, rng.pick([-1, 1_000_000_000, 999_999_999, -999_999_999, 1]))
}

const isTime = (desc: DescMessage) =>
  desc.typeName === "google.protobuf.Timestamp" || desc.typeName === "google.protobuf.Duration"

/** Sets one field somewhere in `root` (reached through set message fields, made when unset) to a hostile value. */
export const hostileEdit = (rng: Rng, root: ReflectMessage): void => {
  let message = root
  for (let depth = 0; depth < 8; depth++) {
    if (isTime(message.desc)) return timeMessage(rng, message)
    const fields = message.desc.fields
    if (fields.length === 0) return
    const field = rng.pick(fields)
    if (field.fieldKind === "message" && rng.next() < 0.7) {
      if (!message.isSet(field)) message.set(field, reflect(field.message))
      const inner = message.get(field)
      if (typeof inner !== "object" || inner === null || !("desc" in inner)) return
      message = inner as ReflectMessage
      continue
    }
    try {
      setHostile(rng, message, field)
    } catch {
      // protobuf-es refuses some values outright (a uint32 of -1): the client cannot send those either.
    }
    return
  }
}

const setHostile = (rng: Rng, message: ReflectMessage, field: DescField): void => {
  switch (field.fieldKind) {
    case "scalar":
      message.set(field, scalarValue(rng, field.scalar))
      return
    case "enum":
      message.set(field, enumValue(rng))
      return
    case "message": {
      const inner = reflect(field.message)
      if (isTime(field.message)) timeMessage(rng, inner)
      message.set(field, inner)
      return
    }
    case "list": {
      const list = message.get(field) as ReflectList
      const count = rng.pick([1, 100, 2_000])
      for (let i = 0; i < count; i++) {
        if (field.listKind === "message") {
          const item = reflect(field.message)
          if (isTime(field.message)) timeMessage(rng, item)
          list.add(item)
        } else if (field.listKind === "enum") list.add(enumValue(rng))
        else if (field.scalar === ScalarType.STRING) list.add(rng.pick(["", "x", "é\u0000", "\ud800"]))
        else if (field.scalar === ScalarType.BYTES) list.add(rng.bytes(rng.int(4)))
        else list.add(scalarValue(rng, field.scalar))
      }
      return
    }
    case "map":
      return
  }
}

/** Bytes with a few changes: flips, insertions, deletions, a cut, a repeated slice. */
export const mutateBytes = (rng: Rng, bytes: Uint8Array): Uint8Array => {
  let out = Array.from(bytes)
  for (let i = 1 + rng.int(6); i > 0; i--) {
    const at = rng.int(out.length + 1)
    switch (rng.int(6)) {
      case 0:
        if (out.length > 0) out[at % out.length] = rng.int(256)
        break
      case 1:
        out.splice(at, 0, rng.pick([0xff, 0x80, 0x00, 0x0b, 0x0c, 0x0f, rng.int(256)]))
        break
      case 2:
        out.splice(at, 1 + rng.int(4))
        break
      case 3:
        out = out.slice(0, at)
        break
      case 4:
        out.splice(at, 0, ...out.slice(rng.int(out.length + 1), rng.int(out.length + 1)))
        break
      default:
        if (out.length > 0) out[at % out.length] ^= 1 << rng.int(8)
    }
  }
  return Uint8Array.from(out)
}

/** Text with a few characters changed, inserted or cut. */
export const mutateText = (rng: Rng, text: string): string => {
  let out = text
  for (let i = 1 + rng.int(4); i > 0; i--) {
    const at = rng.int(out.length + 1)
    const insert = rng.pick(["{", "}", "[", "]", "\"", ",", ":", "1e999", "-1", "null", "\\u0000", "\"\\ud800\"", "9999999999999999999999"])
    out = rng.int(2) === 0 ? out.slice(0, at) + insert + out.slice(at) : out.slice(0, at) + out.slice(at + 1 + rng.int(5))
  }
  return out
}

const varint = (value: number): Array<number> => {
  const out: Array<number> = []
  let rest = value
  while (rest > 0x7f) {
    out.push((rest & 0x7f) | 0x80)
    rest = Math.floor(rest / 128)
  }
  out.push(rest)
  return out
}

/** `depth` groups one inside the other in an unknown field (parsers that skip unknown groups recurse). */
export const nestedGroups = (depth: number): Uint8Array => {
  const start = varint((999 << 3) | 3)
  const end = varint((999 << 3) | 4)
  const out = new Uint8Array(depth * (start.length + end.length))
  for (let i = 0; i < depth; i++) out.set(start, i * start.length)
  for (let i = 0; i < depth; i++) out.set(end, depth * start.length + i * end.length)
  return out
}

/**
 * Field `field` holding a message of `depth` levels, each level the message itself at field number `inner`
 * (e.g. a Literal's collection holding a list of Literals: two fields per level, given as [2, 1]).
 */
export const nestedMessage = (field: number, path: ReadonlyArray<number>, depth: number, leaf: Uint8Array): Uint8Array => {
  const prefixes: Array<Array<number>> = []
  let length = leaf.byteLength
  for (let level = 0; level < depth; level++) {
    for (const number of [...path].reverse()) {
      const prefix = [...varint((number << 3) | 2), ...varint(length)]
      prefixes.push(prefix)
      length += prefix.length
    }
  }
  const outer = [...varint((field << 3) | 2), ...varint(length)]
  const out = new Uint8Array(outer.length + length)
  out.set(outer, 0)
  let at = outer.length
  for (let i = prefixes.length - 1; i >= 0; i--) {
    out.set(prefixes[i]!, at)
    at += prefixes[i]!.length
  }
  out.set(leaf, at)
  return out
}

/** JSON nested `depth` arrays deep inside a field of an object. */
export const nestedJson = (field: string, depth: number): string => `{"${field}":${"[".repeat(depth)}${"]".repeat(depth)}}`

/** Broken gzip: truncated, garbage after a gzip header, or not gzip at all. */
export const brokenGzip = (rng: Rng, body: Uint8Array): Uint8Array => {
  const zipped = gzipSync(body)
  return rng.pick([
    () => zipped.subarray(0, Math.max(1, rng.int(zipped.length))),
    () => Uint8Array.from([0x1f, 0x8b, 0x08, 0x00, ...rng.bytes(20)]),
    () => body,
    () => rng.bytes(rng.int(64))
  ])()
}

/** The message in the wire form of a protocol, or undefined when protobuf-es itself refuses to write it. */
export const encodeAs = <Desc extends DescMessage>(json: boolean, schema: Desc, message: MessageShape<Desc>): Uint8Array | undefined => {
  try {
    return json ? new TextEncoder().encode(toJsonString(schema, message)) : toBinary(schema, message)
  } catch {
    return undefined
  }
}
