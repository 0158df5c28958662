import {
  create,
  createRegistry,
  type DescFile,
  type DescMessage,
  fromBinary,
  type MessageShape,
  toJsonString
} from "@bufbuild/protobuf"
import { EmptySchema } from "@bufbuild/protobuf/wkt"
import { file_flyteidl2_workflow_internal_run_service } from "#gen/flyteidl2/workflow/internal_run_service_pb.js"
import { file_flyteidl2_workflow_run_service } from "#gen/flyteidl2/workflow/run_service_pb.js"
import type { Payload } from "../../domain/Payload.js"
import { encodeBinary } from "./BinaryEncoding.js"

const files = new Map<string, DescFile>()
const collect = (file: DescFile): void => {
  if (files.has(file.name)) return
  files.set(file.name, file)
  file.dependencies.forEach(collect)
}
collect(file_flyteidl2_workflow_run_service)
collect(file_flyteidl2_workflow_internal_run_service)

/** Every type of the served services, so `Any` values render in JSON. */
export const registry = createRegistry(...files.values())

// The message each payload of `toPayload` was made from (a request's own, which nothing changes afterwards).
const madeFrom = new WeakMap<Payload, { readonly schema: DescMessage; readonly message: unknown }>()

/**
 * A message as the domain carries it: binary (the source of truth) and JSON for people. The JSON is rendered
 * when first read (only what is stored needs it; inputs, for one, go to a blob as binary).
 */
export const toPayload = <Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): Payload => {
  let json: string | undefined
  const payload = {
    binary: encodeBinary(schema, message),
    get json() {
      return (json ??= toJsonString(schema, message, { registry }))
    }
  }
  madeFrom.set(payload, { schema, message })
  return payload
}

/** A stored payload as a message of its type, to put in a response. */
export type PayloadReader = <Desc extends DescMessage>(schema: Desc, payload: Payload) => MessageShape<Desc>

/** The payload decoded: what a JSON response needs. */
export const fromPayload: PayloadReader = (schema, payload) => fromBinary(schema, payload.binary)

/**
 * The payload as a message to read and never change: the message `toPayload` made it from (not decoded again:
 * an event batch's events are read right after they are stored), else decoded.
 */
export const readPayload: PayloadReader = (schema, payload) => {
  const source = madeFrom.get(payload)
  return source !== undefined && source.schema === schema
    ? (source.message as MessageShape<typeof schema>)
    : fromBinary(schema, payload.binary)
}

/**
 * For a binary response: a message of the payload's type that carries the stored bytes as unknown fields
 * (each top-level field split off, nothing nested decoded), which protobuf-es writes back as they are. The
 * bytes were written by `toPayload`, so they are a valid encoding of the type.
 */
export const rawPayload: PayloadReader = (schema, payload) => {
  const message = create(schema)
  const fields = fromBinary(EmptySchema, payload.binary).$unknown
  if (fields !== undefined) message.$unknown = fields
  return message
}

/** `rawPayload` for binary responses, `fromPayload` for JSON ones. */
export const payloadReader = (binary: boolean): PayloadReader => (binary ? rawPayload : fromPayload)
