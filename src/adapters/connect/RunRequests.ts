import { type DescMessage, type MessageShape, toJson } from "@bufbuild/protobuf"
import { reflect, type ReflectMessage } from "@bufbuild/protobuf/reflect"
import { createHash } from "node:crypto"
import { Effect, Either } from "effect"
import type { ActionIdentifier, RunIdentifier } from "#gen/flyteidl2/common/identifier_pb.js"
import { type ListRequest, Sort_Direction } from "#gen/flyteidl2/common/list_pb.js"
import { InputsSchema } from "#gen/flyteidl2/task/common_pb.js"
import { RunSpecSchema } from "#gen/flyteidl2/task/run_pb.js"
import { TaskSpecSchema } from "#gen/flyteidl2/task/task_definition_pb.js"
import { type CreateRunRequest as CreateRunMessage, CreateRunRequestSchema, type ListRunsRequest } from "#gen/flyteidl2/workflow/run_service_pb.js"
import type { CreateRunRequest } from "../../domain/CreateRun.js"
import { InvalidArgument, Unimplemented } from "../../domain/Errors.js"
import type { ActionKey, RunKey } from "../../domain/Ids.js"
import type { RunScope } from "../../domain/ListQuery.js"
import type { ListRequestInput } from "../../domain/ListRequest.js"
import { Fingerprint } from "../../domain/Payload.js"
import type { RunSource } from "../../domain/Phase.js"
import { registry, toPayload } from "./ProtoCodec.js"

/** Protobuf requests to domain values. Required identifiers were checked by validation already. */
export const runKey = (id: RunIdentifier | undefined): RunKey => ({
  project: id?.project ?? "",
  domain: id?.domain ?? "",
  name: id?.name ?? ""
})

export const actionKey = (id: ActionIdentifier | undefined): ActionKey => ({ run: runKey(id?.run), name: id?.name ?? "" })

/** Clears every org field in place (`organization` in a ProjectIdentifier), keeping in `cleared` how to put each back. */
const clearOrgs = (message: ReflectMessage, cleared: Array<() => void>): void => {
  for (const field of message.fields) {
    if (!message.isSet(field)) continue
    if (field.fieldKind === "scalar" && (field.name === "org" || field.name === "organization")) {
      const value = message.get(field)
      message.clear(field)
      cleared.push(() => message.set(field, value))
    } else if (field.fieldKind === "message") {
      clearOrgs(message.get(field), cleared)
    } else if (field.fieldKind === "list" && field.listKind === "message") {
      for (const item of message.get(field)) clearOrgs(item as ReflectMessage, cleared)
    } else if (field.fieldKind === "map" && field.mapKind === "message") {
      for (const [, value] of message.get(field)) clearOrgs(value as ReflectMessage, cleared)
    }
  }
}

/** A key with nothing JSON escapes (field names, most map keys) is written as it is, without JSON.stringify. */
const plainKey = /^[\w@.$-]*$/

/** JSON with every object's keys sorted; built as one string, since this runs on every CreateRun. */
const canonical = (value: unknown): string => {
  if (typeof value !== "object" || value === null) return JSON.stringify(value)
  if (Array.isArray(value)) {
    let text = "["
    for (let i = 0; i < value.length; i++) text += (i === 0 ? "" : ",") + canonical(value[i])
    return `${text}]`
  }
  const keys = Object.keys(value).sort()
  let text = "{"
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!
    const name = plainKey.test(key) ? `"${key}"` : JSON.stringify(key)
    text += `${i === 0 ? "" : ","}${name}:${canonical((value as Record<string, unknown>)[key])}`
  }
  return `${text}}`
}

/**
 * SHA-256 of the canonical JSON of a message with every org field cleared (SPEC 5). The orgs are cleared in the
 * message itself and put back before this returns (a copy of the message would cost more than all the rest).
 */
export const fingerprintOf = <Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>) => {
  const cleared: Array<() => void> = []
  try {
    clearOrgs(reflect(schema, message), cleared)
    return Fingerprint(createHash("sha256").update(canonical(toJson(schema, message, { registry }))).digest("hex"))
  } finally {
    for (const restore of cleared) restore()
  }
}

export const createRunRequest = (
  request: CreateRunMessage,
  context: { readonly requestId: string | undefined; readonly createdBy: string | undefined }
): CreateRunRequest => {
  const id: CreateRunRequest["id"] = request.id.case === "projectId"
    ? { kind: "project", org: request.id.value.organization, project: request.id.value.name, domain: request.id.value.domain }
    : { kind: "name", org: request.id.value?.org ?? "", ...runKey(request.id.value) }
  const task: CreateRunRequest["task"] = request.task.case === "taskId"
    ? {
      kind: "id",
      key: {
        project: request.task.value.project,
        domain: request.task.value.domain,
        name: request.task.value.name,
        version: request.task.value.version
      }
    }
    : request.task.case === "triggerName"
    ? { kind: "trigger", name: request.task.value.name }
    : { kind: "spec", spec: toPayload(TaskSpecSchema, request.task.value!) }
  const inputs: CreateRunRequest["inputs"] = request.inputWrapper.case === "inputs"
    ? { kind: "inline", inputs: toPayload(InputsSchema, request.inputWrapper.value) }
    : request.inputWrapper.case === "offloadedInputData"
    ? { kind: "offloaded", uri: request.inputWrapper.value.uri }
    : { kind: "none" }
  return {
    id,
    task,
    inputs,
    runSpec: request.runSpec === undefined ? undefined : toPayload(RunSpecSchema, request.runSpec),
    source: request.source as RunSource,
    fingerprint: fingerprintOf(CreateRunRequestSchema, request),
    requestId: context.requestId,
    createdBy: context.createdBy
  }
}

const direction = (value: Sort_Direction) => (value === Sort_Direction.ASCENDING ? "ASC" as const : "DESC" as const)

export const listRequestInput = (request: ListRequest | undefined): ListRequestInput => ({
  limit: request?.limit ?? 0,
  token: request?.token ?? "",
  sortBy: request?.sortBy === undefined ? undefined : { key: request.sortBy.key, direction: direction(request.sortBy.direction) },
  sortByFields: (request?.sortByFields ?? []).map((sort) => ({ key: sort.key, direction: direction(sort.direction) })),
  filters: (request?.filters ?? []).map((filter) => ({
    function: filter.function,
    field: filter.field,
    values: filter.values
  })),
  rawFilters: request?.rawFilters ?? []
})

export const runScope = (request: ListRunsRequest): Effect.Effect<RunScope, Unimplemented> => {
  switch (request.scopeBy.case) {
    case "projectId":
      return Effect.succeed({ kind: "project", project: request.scopeBy.value.name, domain: request.scopeBy.value.domain })
    case "taskName": {
      const { project, domain, name } = request.scopeBy.value
      return Effect.succeed({ kind: "taskName", project, domain, name })
    }
    case "taskId": {
      const { project, domain, name, version } = request.scopeBy.value
      return Effect.succeed({ kind: "taskId", project, domain, name, version })
    }
    case "triggerName":
      return Effect.fail(new Unimplemented({ message: "trigger_name: triggers are not served by this service" }))
    default:
      return Effect.succeed({ kind: "all" })
  }
}

/** The largest attempt number the stores hold (a 32-bit signed column); uint32 on the wire goes twice as far. */
const maxAttempt = 2_147_483_647

/** An attempt number as the stores can hold it. */
export const attemptAt = (field: string, attempt: number): Either.Either<number, InvalidArgument> =>
  attempt <= maxAttempt
    ? Either.right(attempt)
    : Either.left(new InvalidArgument({ message: `${field}: ${attempt} is past the largest attempt number, ${maxAttempt}` }))
