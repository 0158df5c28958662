import type { Payload } from "../../domain/Payload.js"

/**
 * How payloads sit in their column pairs: the binary in `*_pb`, the JSON in the seed's column. A list of
 * payloads is stored as a message with `repeated X items = 1` (each item framed as tag 0x0a, varint length,
 * bytes) and a JSON array of the items' JSON.
 */

/** Reads a JSON column as text: both databases return the stored text (a parsed value is rendered again). */
export type JsonReader = (value: unknown) => string

export const jsonFromText: JsonReader = (value) => (typeof value === "string" ? value : JSON.stringify(value))

export const bytes = (binary: Uint8Array): Buffer => Buffer.from(binary.buffer, binary.byteOffset, binary.byteLength)

const copy = (value: Uint8Array | null): Uint8Array => (value === null ? new Uint8Array() : new Uint8Array(value))

export const payloadFrom = (json: unknown, binary: Uint8Array | null, readJson: JsonReader): Payload | undefined =>
  binary === null ? undefined : { binary: copy(binary), json: json === null ? "" : readJson(json) }

const varint = (n: number): Array<number> => {
  const out: Array<number> = []
  let rest = n
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80)
    rest = Math.floor(rest / 0x80)
  }
  out.push(rest)
  return out
}

export const frameRepeated = (items: ReadonlyArray<Payload>): Buffer =>
  Buffer.concat(items.flatMap((item) => [Buffer.from([0x0a, ...varint(item.binary.length)]), bytes(item.binary)]))

const readVarint = (data: Uint8Array, start: number): readonly [value: number, next: number] => {
  let value = 0
  let scale = 1
  let at = start
  while (at < data.length) {
    const byte = data[at]!
    at++
    value += (byte & 0x7f) * scale
    if (byte < 0x80) return [value, at]
    scale *= 0x80
  }
  return [value, at]
}

/** The items of field 1, skipping any other field. */
const unframeRepeated = (data: Uint8Array): Array<Uint8Array> => {
  const items: Array<Uint8Array> = []
  let at = 0
  while (at < data.length) {
    const [tag, afterTag] = readVarint(data, at)
    const wireType = tag & 0x07
    if (wireType === 0) at = readVarint(data, afterTag)[1]
    else if (wireType === 1) at = afterTag + 8
    else if (wireType === 5) at = afterTag + 4
    else if (wireType === 2) {
      const [length, start] = readVarint(data, afterTag)
      if (tag === 0x0a) items.push(new Uint8Array(data.subarray(start, start + length)))
      at = start + length
    } else break
  }
  return items
}

export const jsonArray = (items: ReadonlyArray<Payload>): string => `[${items.map((item) => item.json).join(",")}]`

export const payloadList = (json: unknown, binary: Uint8Array | null): Array<Payload> => {
  if (binary === null) return []
  const parsed: unknown = json === null ? [] : typeof json === "string" ? JSON.parse(json) : json
  const jsons = Array.isArray(parsed) ? parsed.map((item: unknown) => JSON.stringify(item)) : []
  return unframeRepeated(binary).map((item, i) => ({ binary: item, json: jsons[i] ?? "{}" }))
}
