import { create, fromBinary, toBinary } from "@bufbuild/protobuf"
import { describe, expect, it } from "@effect/vitest"
import { ActionEventSchema, ErrorInfoSchema } from "#gen/flyteidl2/workflow/run_definition_pb.js"
import { fromPayload, readPayload, toPayload } from "../../../src/adapters/connect/ProtoCodec.js"

const event = () =>
  create(ActionEventSchema, {
    id: { run: { project: "p", domain: "development", name: "r1" }, name: "a0" },
    attempt: 2,
    phase: 4,
    cluster: "c1"
  })

describe("ProtoCodec", () => {
  it("a payload made from a message is its encoding, and reads back as that same message", () => {
    const message = event()
    const payload = toPayload(ActionEventSchema, message)
    expect(fromBinary(ActionEventSchema, payload.binary)).toEqual(message)
    expect(readPayload(ActionEventSchema, payload)).toBe(message)
    // fromPayload always decodes: what it gives may be changed without touching the payload's message.
    expect(fromPayload(ActionEventSchema, payload)).not.toBe(message)
    expect(fromPayload(ActionEventSchema, payload)).toEqual(message)
  })

  it("a payload from elsewhere (a database row), or read as another type, is decoded", () => {
    const message = event()
    const stored = { binary: toBinary(ActionEventSchema, message), json: "" }
    const read = readPayload(ActionEventSchema, stored)
    expect(read).not.toBe(message)
    expect(read).toEqual(message)
    const payload = toPayload(ActionEventSchema, message)
    expect(readPayload(ErrorInfoSchema, payload).$typeName).toBe("flyteidl2.workflow.ErrorInfo")
  })
})
