import { fromBinary } from "@bufbuild/protobuf"
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt"
import { createClient, createRouterTransport } from "@connectrpc/connect"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import * as v1 from "#gen/grpc/reflection/v1/reflection_pb.js"
import * as v1alpha from "#gen/grpc/reflection/v1alpha/reflection_pb.js"
import { InternalRunService } from "#gen/flyteidl2/workflow/internal_run_service_pb.js"
import { RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import { makeEffectHandlers } from "../../../src/adapters/connect/EffectHandlers.js"
import { addServerReflection } from "../../../src/adapters/connect/ServerReflection.js"

type Ask = v1.ServerReflectionRequest["messageRequest"]

/** A router with RunService, reflection, and InternalRunService registered after reflection. */
const makeTransport = Effect.gen(function*() {
  const runtime = yield* Effect.runtime<never>()
  const shuttingDown = yield* Deferred.make<void>()
  const handlers = makeEffectHandlers({ runtime, shuttingDown, gate: Effect.void })
  return createRouterTransport((router) => {
    router.service(RunService, handlers.service(RunService, {}))
    addServerReflection(router, handlers)
    router.service(InternalRunService, handlers.service(InternalRunService, {}))
  })
})

/** Sends `asks` on one reflection stream and collects the answers. */
const askAll = (asks: ReadonlyArray<Ask>) =>
  Effect.gen(function*() {
    const client = createClient(v1.ServerReflection, yield* makeTransport)
    return yield* Effect.promise(async () => {
      async function* requests() {
        for (const ask of asks) yield { host: "h", messageRequest: ask }
      }
      const out: Array<v1.ServerReflectionResponse> = []
      for await (const response of client.serverReflectionInfo(requests())) out.push(response)
      return out
    })
  })

const fileNames = (response: v1.ServerReflectionResponse) =>
  response.messageResponse.case === "fileDescriptorResponse"
    ? response.messageResponse.value.fileDescriptorProto.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes).name)
    : []

const servedServices = [
  "flyteidl2.workflow.InternalRunService",
  "flyteidl2.workflow.RunService",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection"
]

describe("server reflection", () => {
  it.live("lists every service on the router, those registered after it included", () =>
    Effect.gen(function*() {
      const [response] = yield* askAll([{ case: "listServices", value: "" }])
      expect(response.validHost).toBe("h")
      expect(response.originalRequest?.messageRequest.case).toBe("listServices")
      expect(response.messageResponse.case).toBe("listServicesResponse")
      const names = response.messageResponse.case === "listServicesResponse"
        ? response.messageResponse.value.service.map((s) => s.name)
        : []
      expect(names).toEqual(servedServices)
    }))

  it.live("answers a symbol with its file and then imports, each import once per stream", () =>
    Effect.gen(function*() {
      const [service, method, again] = yield* askAll([
        { case: "fileContainingSymbol", value: "flyteidl2.workflow.RunService" },
        { case: "fileContainingSymbol", value: "flyteidl2.workflow.InternalRunService.RecordAction" },
        { case: "fileByFilename", value: "flyteidl2/workflow/run_service.proto" }
      ])
      const first = fileNames(service)
      expect(first[0]).toBe("flyteidl2/workflow/run_service.proto")
      expect(first).toContain("buf/validate/validate.proto")
      expect(first).toContain("google/protobuf/timestamp.proto")
      expect(new Set(first).size).toBe(first.length)
      const second = fileNames(method)
      expect(second[0]).toBe("flyteidl2/workflow/internal_run_service.proto")
      for (const name of second.slice(1)) expect(first).not.toContain(name)
      // The file asked for is always sent, even when it went out before.
      expect(fileNames(again)).toEqual(["flyteidl2/workflow/run_service.proto"])
    }))

  it.live("finds messages, nested types, fields, enum values and extensions", () =>
    Effect.gen(function*() {
      const answers = yield* askAll([
        { case: "fileContainingSymbol", value: "flyteidl2.workflow.CreateRunRequest" },
        { case: "fileContainingSymbol", value: ".flyteidl2.workflow.CreateRunRequest.run_id" },
        { case: "fileContainingSymbol", value: "flyteidl2.common.ACTION_PHASE_RUNNING" },
        { case: "fileContainingSymbol", value: "buf.validate.field" },
        {
          case: "fileContainingExtension",
          value: { $typeName: "grpc.reflection.v1.ExtensionRequest", containingType: "google.protobuf.FieldOptions", extensionNumber: 1159 }
        },
        { case: "allExtensionNumbersOfType", value: "google.protobuf.FieldOptions" }
      ])
      expect(fileNames(answers[0])[0]).toBe("flyteidl2/workflow/run_service.proto")
      expect(fileNames(answers[1])[0]).toBe("flyteidl2/workflow/run_service.proto")
      expect(fileNames(answers[2])[0]).toBe("flyteidl2/common/phase.proto")
      expect(fileNames(answers[3])[0]).toBe("buf/validate/validate.proto")
      expect(fileNames(answers[4])[0]).toBe("buf/validate/validate.proto")
      const numbers = answers[5].messageResponse
      expect(numbers.case).toBe("allExtensionNumbersResponse")
      if (numbers.case === "allExtensionNumbersResponse") {
        expect(numbers.value.baseTypeName).toBe("google.protobuf.FieldOptions")
        expect(numbers.value.extensionNumber).toContain(1159)
      }
    }))

  it.live("answers NotFound in band for unknown names, and the stream goes on", () =>
    Effect.gen(function*() {
      const answers = yield* askAll([
        { case: "fileContainingSymbol", value: "no.such.Service" },
        { case: "fileByFilename", value: "no/such.proto" },
        {
          case: "fileContainingExtension",
          value: { $typeName: "grpc.reflection.v1.ExtensionRequest", containingType: "google.protobuf.FieldOptions", extensionNumber: 1 }
        },
        { case: "allExtensionNumbersOfType", value: "no.such.Message" },
        { case: undefined },
        { case: "listServices", value: "*" }
      ])
      for (const answer of answers.slice(0, 4)) {
        expect(answer.messageResponse.case).toBe("errorResponse")
        expect(answer.messageResponse.value).toMatchObject({ errorCode: 5 })
      }
      expect(answers[4].messageResponse.value).toMatchObject({ errorCode: 3 })
      expect(answers[5].messageResponse.case).toBe("listServicesResponse")
    }))

  it.live("serves v1alpha with the same answers", () =>
    Effect.gen(function*() {
      const client = createClient(v1alpha.ServerReflection, yield* makeTransport)
      const responses = yield* Effect.promise(async () => {
        async function* requests() {
          yield { host: "h", messageRequest: { case: "listServices" as const, value: "" } }
          yield { messageRequest: { case: "fileContainingSymbol" as const, value: "flyteidl2.workflow.RunService" } }
        }
        const out: Array<v1alpha.ServerReflectionResponse> = []
        for await (const response of client.serverReflectionInfo(requests())) out.push(response)
        return out
      })
      expect(responses[0].$typeName).toBe("grpc.reflection.v1alpha.ServerReflectionResponse")
      expect(responses[0].messageResponse.case === "listServicesResponse" && responses[0].messageResponse.value.service.map((s) => s.name))
        .toEqual(servedServices)
      const files = responses[1].messageResponse.case === "fileDescriptorResponse"
        ? responses[1].messageResponse.value.fileDescriptorProto
        : []
      expect(fromBinary(FileDescriptorProtoSchema, files[0]).name).toBe("flyteidl2/workflow/run_service.proto")
    }))
})
