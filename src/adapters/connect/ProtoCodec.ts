import {
  createRegistry,
  type DescFile,
  type DescMessage,
  fromBinary,
  type MessageShape,
  toBinary,
  toJsonString
} from "@bufbuild/protobuf"
import { file_flyteidl2_workflow_internal_run_service } from "#gen/flyteidl2/workflow/internal_run_service_pb.js"
import { file_flyteidl2_workflow_run_service } from "#gen/flyteidl2/workflow/run_service_pb.js"
import type { Payload } from "../../domain/Payload.js"

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

/**
 * A message as the domain carries it: binary (the source of truth) and JSON for people. The JSON is rendered
 * when first read (only what is stored needs it; inputs, for one, go to a blob as binary).
 */
export const toPayload = <Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): Payload => {
  let json: string | undefined
  return {
    binary: toBinary(schema, message),
    get json() {
      return (json ??= toJsonString(schema, message, { registry }))
    }
  }
}

export const fromPayload = <Desc extends DescMessage>(schema: Desc, payload: Payload): MessageShape<Desc> =>
  fromBinary(schema, payload.binary)
