import {
  create,
  createFileRegistry,
  type DescEnum,
  type DescField,
  type DescMessage,
  fromBinary,
  type MessageShape,
  ScalarType,
  toBinary
} from "@bufbuild/protobuf"
import { reflect, type ReflectList, type ReflectMap, type ReflectMessage } from "@bufbuild/protobuf/reflect"
import { BinaryWriter } from "@bufbuild/protobuf/wire"
import { FileDescriptorSetSchema, StructSchema, TimestampSchema } from "@bufbuild/protobuf/wkt"
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { readFileSync } from "node:fs"
import { GetRunDetailsResponseSchema, ListRunsResponseSchema } from "#gen/flyteidl2/workflow/run_service_pb.js"
import { ScalarSchema } from "#gen/flyteidl2/core/literals_pb.js"
import { TaskTemplateSchema } from "#gen/flyteidl2/core/tasks_pb.js"
import { RunSpecSchema } from "#gen/flyteidl2/task/run_pb.js"
import { EnrichedActionSchema, RunSchema, TaskActionSchema } from "#gen/flyteidl2/workflow/run_definition_pb.js"
import { binaryMessage, encodeBinary } from "../../../src/adapters/connect/BinaryEncoding.js"

// Every message type of the IDL and what it imports (google.protobuf's descriptors, wrappers and Struct among
// them), from the schema image `npm install` writes.
const registry = createFileRegistry(
  fromBinary(FileDescriptorSetSchema, readFileSync(new URL("../../../proto/flyteidl2.binpb", import.meta.url)))
)
const messageTypes = Array.from(registry).filter((type): type is DescMessage => type.kind === "message")

type Draw = <T>(arbitrary: fc.Arbitrary<T>) => T

const strings = fc.oneof(
  fc.string({ maxLength: 50 }),
  fc.string({ unit: "binary", maxLength: 50 }),
  fc.string({ unit: "binary", minLength: 40, maxLength: 400 })
)

const scalarValue = (draw: Draw, scalar: ScalarType): unknown => {
  switch (scalar) {
    case ScalarType.STRING:
      return draw(strings)
    case ScalarType.BYTES:
      return draw(fc.uint8Array({ maxLength: 300 }))
    case ScalarType.BOOL:
      return draw(fc.boolean())
    case ScalarType.DOUBLE:
      return draw(fc.double())
    case ScalarType.FLOAT:
      return draw(fc.float())
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return draw(fc.integer())
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return draw(fc.integer({ min: 0, max: 0xffffffff }))
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return draw(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }))
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return draw(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }))
  }
}

const enumValue = (draw: Draw, desc: DescEnum) => draw(fc.constantFrom(...desc.values.map((value) => value.number)))

/** A message of `desc` with fields set at random, through protobuf-es's reflection (which checks each value). */
const randomMessage = (draw: Draw, desc: DescMessage, depth: number): ReflectMessage => {
  const message = reflect(desc)
  for (const field of desc.fields) {
    if (!draw(fc.boolean())) continue
    setRandom(draw, message, field, depth)
  }
  if (draw(fc.integer({ min: 0, max: 4 })) === 0) {
    message.setUnknown([{ no: 5000, wireType: 0, data: new BinaryWriter().uint32(draw(fc.nat())).finish() }])
  }
  return message
}

const setRandom = (draw: Draw, message: ReflectMessage, field: DescField, depth: number) => {
  const size = () => draw(fc.integer({ min: 0, max: depth > 2 ? 0 : 3 }))
  switch (field.fieldKind) {
    case "scalar":
      message.set(field, scalarValue(draw, field.scalar))
      return
    case "enum":
      message.set(field, enumValue(draw, field.enum))
      return
    case "message":
      if (depth < 4) message.set(field, randomMessage(draw, field.message, depth + 1))
      return
    case "list": {
      const list = message.get(field) as ReflectList
      for (let i = size(); i > 0; i--) {
        if (field.listKind === "message") list.add(randomMessage(draw, field.message, depth + 1))
        else if (field.listKind === "enum") list.add(enumValue(draw, field.enum))
        else list.add(scalarValue(draw, field.scalar))
      }
      return
    }
    case "map": {
      const map = message.get(field) as ReflectMap
      for (let i = size(); i > 0; i--) {
        const key = scalarValue(draw, field.mapKey)
        if (field.mapKind === "message") map.set(key, randomMessage(draw, field.message, depth + 1))
        else if (field.mapKind === "enum") map.set(key, enumValue(draw, field.enum))
        else map.set(key, scalarValue(draw, field.scalar))
      }
    }
  }
}

/** The bytes, or the error's message. */
const outcome = (encode: () => Uint8Array): { readonly bytes: Uint8Array } | { readonly error: string } => {
  try {
    return { bytes: encode() }
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) }
  }
}

/** Where two encodings part, with a few bytes of each around it (undefined when they are the same). */
const firstDifference = (ours: Uint8Array, theirs: Uint8Array) => {
  let at = 0
  while (at < ours.length && at < theirs.length && ours[at] === theirs[at]) at++
  if (at === ours.length && at === theirs.length) return undefined
  const around = (bytes: Uint8Array) => Buffer.from(bytes.subarray(Math.max(0, at - 8), at + 8)).toString("hex")
  return { at, lengths: [ours.length, theirs.length], ours: around(ours), toBinary: around(theirs) }
}

/** `encodeBinary` gives `toBinary`'s bytes, or fails with its error. */
const agrees = (desc: DescMessage, message: MessageShape<DescMessage>) => {
  const ours = outcome(() => encodeBinary(desc, message))
  const theirs = outcome(() => toBinary(desc, message))
  if ("bytes" in ours && "bytes" in theirs) {
    expect(firstDifference(ours.bytes, theirs.bytes), desc.typeName).toBeUndefined()
  } else {
    expect(ours, desc.typeName).toEqual(theirs)
  }
}

describe("encodeBinary", () => {
  it.prop(
    "writes what toBinary writes, for random messages of every type in the IDL",
    [fc.constantFrom(...messageTypes.map((desc) => desc.typeName)), fc.gen()],
    ([typeName, g]) => {
      const desc = registry.getMessage(typeName)!
      agrees(desc, randomMessage((arbitrary) => g(() => arbitrary), desc, 0).message)
    },
    // No shrinking: a failure names the type and the byte where the encodings part, and shrinking a draw log this
    // large runs out of memory.
    { fastCheck: { numRuns: 25 * messageTypes.length, endOnFailure: true } }
  )

  it("writes nested lengths of one to four bytes, and answers larger than its first buffer", () => {
    for (const length of [0, 127, 128, 16_383, 16_384, 70_000, 2_097_151, 2_097_152]) {
      const run = create(RunSchema, { action: { id: { name: "a".repeat(length) } } })
      agrees(RunSchema, run)
    }
    const many = create(ListRunsResponseSchema, {
      runs: Array.from({ length: 2_000 }, (_, i) => ({ action: { id: { name: `run-${i}-é` } } })),
      token: "next"
    })
    agrees(ListRunsResponseSchema, many)
  })

  it("returns bytes of their own: a later call does not change an earlier answer", () => {
    const first = create(RunSchema, { action: { id: { name: "first" } } })
    const bytes = encodeBinary(RunSchema, first)
    const copy = Uint8Array.from(bytes)
    encodeBinary(RunSchema, create(RunSchema, { action: { id: { name: "x".repeat(200_000) } } }))
    expect(bytes).toEqual(copy)
  })

  it("writes wrapper and Struct fields, which protobuf-es holds as plain values, and maps with number keys", () => {
    agrees(RunSpecSchema, create(RunSpecSchema, { interruptible: false }))
    agrees(RunSpecSchema, create(RunSpecSchema, { interruptible: true }))
    agrees(TaskActionSchema, create(TaskActionSchema, { cacheKey: "key-é" }))
    const json = { retries: 3, tags: ["a", null, true], nested: { ratio: 0.5 } }
    agrees(TaskTemplateSchema, create(TaskTemplateSchema, { custom: json }))
    agrees(ScalarSchema, create(ScalarSchema, { value: { case: "generic", value: json } }))
    agrees(StructSchema, create(StructSchema, { fields: { a: { kind: { case: "numberValue", value: 1 } } } }))
    agrees(EnrichedActionSchema, create(EnrichedActionSchema, { childrenPhaseCounts: { 1: 3, 4: 0, 7: 12 } }))
    agrees(TimestampSchema, create(TimestampSchema, { seconds: -1n, nanos: 5 }))
  })

  it("writes strings as toBinary does, lone surrogates (as U+FFFD) included", () => {
    const names = ["ascii", "é", "ab\u00e9cd", "\ud83d\ude00", "x\ud800y", "\udfff", "é".repeat(42), "\ud800".repeat(50)]
    for (const name of names) {
      agrees(RunSchema, create(RunSchema, { action: { id: { name } } }))
    }
  })

  it("fails as toBinary fails on a value its field cannot hold", () => {
    const bad = create(TimestampSchema, { seconds: 1n, nanos: 1.5 })
    expect(() => encodeBinary(TimestampSchema, bad)).toThrow(/cannot encode field google\.protobuf\.Timestamp\.nanos/)
  })
})

describe("binaryMessage", () => {
  it("goes out through toBinary (as Connect sends it) as the message itself would", () => {
    const details = create(GetRunDetailsResponseSchema, {
      details: { action: { id: { name: "a0" }, attempts: [{ attempt: 1 }, { attempt: 2 }] } }
    })
    const carrier = binaryMessage(GetRunDetailsResponseSchema, details)
    expect(toBinary(GetRunDetailsResponseSchema, carrier)).toEqual(toBinary(GetRunDetailsResponseSchema, details))
    expect(carrier.details).toBeUndefined()
  })
})
