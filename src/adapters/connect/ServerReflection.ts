import { create, type DescService, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf"
import type { ConnectRouter } from "@connectrpc/connect"
import { Stream } from "effect"
import * as v1 from "#gen/grpc/reflection/v1/reflection_pb.js"
import * as v1alpha from "#gen/grpc/reflection/v1alpha/reflection_pb.js"
import type { EffectHandlers } from "./EffectHandlers.js"
import { fileWithDependencies, makeReflectionIndex, type ReflectionIndex } from "./ReflectionIndex.js"

type Response = MessageInitShape<typeof v1.ServerReflectionResponseSchema>
type Answer = NonNullable<Response["messageResponse"]>

// gRPC status codes, as the reflection protocol reports them in-band.
const NOT_FOUND = 5
const INVALID_ARGUMENT = 3

const notFound = (message: string): Answer => ({
  case: "errorResponse",
  value: { errorCode: NOT_FOUND, errorMessage: message }
})

const files = (files: ReadonlyArray<Uint8Array>): Answer => ({
  case: "fileDescriptorResponse",
  value: { fileDescriptorProto: [...files] }
})

/** One reflection request answered; `sent` holds the files this stream has sent so far. */
export const answerReflection = (
  index: ReflectionIndex,
  request: v1.ServerReflectionRequest,
  sent: Set<string>
): Response => {
  const answer = (): Answer => {
    const ask = request.messageRequest
    switch (ask.case) {
      case "listServices":
        return { case: "listServicesResponse", value: { service: index.services.map((name) => ({ name })) } }
      case "fileByFilename": {
        const file = index.byFileName.get(ask.value)
        return file === undefined ? notFound(`file ${ask.value} not found`) : files(fileWithDependencies(file, sent))
      }
      case "fileContainingSymbol": {
        const file = index.bySymbol.get(ask.value.replace(/^\./, ""))
        return file === undefined ? notFound(`symbol ${ask.value} not found`) : files(fileWithDependencies(file, sent))
      }
      case "fileContainingExtension": {
        const { containingType, extensionNumber } = ask.value
        const file = index.extensions.get(containingType.replace(/^\./, ""))?.get(extensionNumber)
        return file === undefined
          ? notFound(`extension ${extensionNumber} of ${containingType} not found`)
          : files(fileWithDependencies(file, sent))
      }
      case "allExtensionNumbersOfType": {
        const typeName = ask.value.replace(/^\./, "")
        if (!index.bySymbol.has(typeName)) return notFound(`type ${ask.value} not found`)
        const numbers = Array.from(index.extensions.get(typeName)?.keys() ?? []).sort((a, b) => a - b)
        return { case: "allExtensionNumbersResponse", value: { baseTypeName: typeName, extensionNumber: numbers } }
      }
      case undefined:
        return { case: "errorResponse", value: { errorCode: INVALID_ARGUMENT, errorMessage: "no request in the message" } }
    }
  }
  return { validHost: request.host, originalRequest: request, messageResponse: answer() }
}

/**
 * Serves `grpc.reflection.v1` and `v1alpha` for every service registered on `router`, these two included. The
 * services are read from the router when a reflection stream opens, so services registered after this call are
 * listed too, and nothing has to be kept in step with the routes by hand.
 */
export const addServerReflection = <R>(router: ConnectRouter, handlers: EffectHandlers<R>): void => {
  let cached: { readonly handlerCount: number; readonly index: ReflectionIndex } | undefined
  const currentIndex = (): ReflectionIndex => {
    if (cached === undefined || cached.handlerCount !== router.handlers.length) {
      const services = new Map<string, DescService>()
      for (const handler of router.handlers) services.set(handler.service.typeName, handler.service)
      cached = { handlerCount: router.handlers.length, index: makeReflectionIndex(Array.from(services.values())) }
    }
    return cached.index
  }

  const answers = (requests: Stream.Stream<v1.ServerReflectionRequest, unknown>) =>
    Stream.suspend(() => {
      const index = currentIndex()
      const sent = new Set<string>()
      return Stream.map(requests, (request) => answerReflection(index, request, sent))
    })

  router.service(v1.ServerReflection, {
    serverReflectionInfo: handlers.bidiStream(v1.ServerReflection.method.serverReflectionInfo, answers)
  })
  // v1alpha's messages are v1's under another package (same fields, same numbers): translated through the wire.
  router.service(v1alpha.ServerReflection, {
    serverReflectionInfo: handlers.bidiStream(
      v1alpha.ServerReflection.method.serverReflectionInfo,
      (requests) =>
        answers(Stream.map(requests, (request) =>
          fromBinary(v1.ServerReflectionRequestSchema, toBinary(v1alpha.ServerReflectionRequestSchema, request)))).pipe(
            Stream.map((response) =>
              fromBinary(
                v1alpha.ServerReflectionResponseSchema,
                toBinary(v1.ServerReflectionResponseSchema, create(v1.ServerReflectionResponseSchema, response))
              )
            )
          )
    )
  })
}
