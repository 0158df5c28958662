import { Code, ConnectError } from "@connectrpc/connect"
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node"
import type { Compression, UniversalHandler, UniversalServerResponse } from "@connectrpc/connect/protocol"

/**
 * connect-es 2.1 answers a few faults of the client's own bytes with `Internal`: a body that is not valid
 * protobuf ("parse binary: ..."), an envelope flagged compressed with no encoding named, and some broken
 * compressed bodies. connect-go answers them `InvalidArgument`, and so does SPEC 10: the client must not retry
 * them. The library decides the code where nothing of ours runs (before interceptors), so these are the two
 * places left: our own decompressors, and the finished answer of each protocol.
 */
const faultPrefixes = ["parse binary:", "received compressed envelope, but do not know how to decompress"]

const isClientFault = (message: string): boolean => faultPrefixes.some((prefix) => message.startsWith(prefix))

/** A fault of the client's bytes met while reading a request stream, as the InvalidArgument it is. */
export const asClientFault = (error: ConnectError): ConnectError =>
  error.code === Code.Internal && isClientFault(error.rawMessage)
    ? new ConnectError(invalidArgumentMessage(error.rawMessage), Code.InvalidArgument)
    : error

/** gzip and brotli whose every failure to decompress is the client's (a size past the limit stays ResourceExhausted). */
const guarded = (compression: Compression): Compression => ({
  name: compression.name,
  compress: (bytes) => compression.compress(bytes),
  decompress: (bytes, readMaxBytes) =>
    compression.decompress(bytes, readMaxBytes).catch((error: unknown) => {
      const connectError = ConnectError.from(error)
      if (connectError.code === Code.ResourceExhausted) throw connectError
      throw new ConnectError(`the request body is not valid ${compression.name}`, Code.InvalidArgument)
    })
})

export const acceptCompression: Array<Compression> = [guarded(compressionGzip), guarded(compressionBrotli)]

const encoder = new TextEncoder()
const decoder = new TextDecoder()

const invalidArgumentMessage = (message: string): string =>
  message.startsWith("parse binary:")
    ? `the request body is not a valid protobuf message: ${message.slice("parse binary:".length).trim()}`
    : message

async function* onlyChunk(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes
}

const collect = async (body: AsyncIterable<Uint8Array>): Promise<Uint8Array> => {
  const chunks: Array<Uint8Array> = []
  let length = 0
  for await (const chunk of body) {
    chunks.push(chunk)
    length += chunk.length
  }
  const all = new Uint8Array(length)
  let offset = 0
  for (const chunk of chunks) {
    all.set(chunk, offset)
    offset += chunk.length
  }
  return all
}

/** A Connect unary error answer (HTTP 500, a JSON error) about the client's bytes, as InvalidArgument (HTTP 400). */
const connectUnary = async (response: UniversalServerResponse): Promise<UniversalServerResponse> => {
  if (response.body === undefined || response.header?.has("content-encoding")) return response
  const bytes = await collect(response.body)
  let error: { code?: unknown; message?: unknown } | undefined
  try {
    error = JSON.parse(decoder.decode(bytes)) as typeof error
  } catch {
    error = undefined
  }
  if (error?.code !== "internal" || typeof error.message !== "string" || !isClientFault(error.message)) {
    return { ...response, body: onlyChunk(bytes) }
  }
  const body = encoder.encode(JSON.stringify({ code: "invalid_argument", message: invalidArgumentMessage(error.message) }))
  response.header?.set("content-length", String(body.byteLength))
  return { ...response, status: 400, body: onlyChunk(body) }
}

/** gRPC: the status goes in the trailers, sent once the body has ended. */
const grpcTrailers = (response: UniversalServerResponse): UniversalServerResponse => {
  const { body, trailer } = response
  if (body === undefined || trailer === undefined) return response
  const fix = (headers: Headers) => {
    const message = decodeURIComponent(headers.get("grpc-message") ?? "")
    if (headers.get("grpc-status") !== String(Code.Internal) || !isClientFault(message)) return
    headers.set("grpc-status", String(Code.InvalidArgument))
    headers.set("grpc-message", encodeURIComponent(invalidArgumentMessage(message)))
  }
  async function* fixed() {
    yield* body!
    fix(trailer!)
  }
  return { ...response, body: fixed() }
}

const frameFlags = { grpcWebTrailer: 0b1000_0000, connectEndStream: 0b0000_0010 }

const frame = (flags: number, data: Uint8Array): Uint8Array => {
  const out = new Uint8Array(5 + data.byteLength)
  out[0] = flags
  new DataView(out.buffer).setUint32(1, data.byteLength)
  out.set(data, 5)
  return out
}

/** The one uncompressed frame of `flags` a chunk holds in full, else undefined. */
const soleFrame = (chunk: Uint8Array, flags: number): Uint8Array | undefined => {
  if (chunk.byteLength < 5 || chunk[0] !== flags) return undefined
  const length = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength).getUint32(1)
  return chunk.byteLength === 5 + length ? chunk.subarray(5) : undefined
}

/** gRPC-Web: the status is the last frame of the body, as header lines. */
const grpcWebTrailerFrame = (data: Uint8Array): Uint8Array | undefined => {
  const text = decoder.decode(data)
  const status = /^grpc-status: *(\d+)\r?$/m.exec(text)?.[1]
  const message = decodeURIComponent(/^grpc-message: *(.*?)\r?$/m.exec(text)?.[1] ?? "")
  if (status !== String(Code.Internal) || !isClientFault(message)) return undefined
  const lines = text.split("\r\n").filter((line) => line !== "" && !/^grpc-(status|message):/.test(line))
  lines.push(`grpc-status: ${Code.InvalidArgument}`, `grpc-message: ${encodeURIComponent(invalidArgumentMessage(message))}`)
  return encoder.encode(lines.map((line) => `${line}\r\n`).join(""))
}

/** Connect streaming: the status is the last frame of the body, a JSON end-of-stream message. */
const connectEndStreamFrame = (data: Uint8Array): Uint8Array | undefined => {
  let end: { error?: { code?: unknown; message?: unknown } } | undefined
  try {
    end = JSON.parse(decoder.decode(data)) as typeof end
  } catch {
    return undefined
  }
  const error = end?.error
  if (error?.code !== "internal" || typeof error.message !== "string" || !isClientFault(error.message)) return undefined
  return encoder.encode(JSON.stringify({
    ...end,
    error: { ...error, code: "invalid_argument", message: invalidArgumentMessage(error.message) }
  }))
}

const lastFrame = (
  response: UniversalServerResponse,
  flags: number,
  rewrite: (data: Uint8Array) => Uint8Array | undefined
): UniversalServerResponse => {
  const body = response.body
  if (body === undefined) return response
  async function* fixed() {
    for await (const chunk of body!) {
      const data = soleFrame(chunk, flags)
      const rewritten = data === undefined ? undefined : rewrite(data)
      yield rewritten === undefined ? chunk : frame(flags, rewritten)
    }
  }
  return { ...response, body: fixed() }
}

/** The handler, with the client's faults answered `InvalidArgument` in whichever protocol was spoken. */
export const answerClientFaults = (handler: UniversalHandler): UniversalHandler => {
  const wrapped = async (request: Parameters<UniversalHandler>[0]) => {
    const response = await handler(request)
    const type = response.header?.get("content-type") ?? ""
    if (type.startsWith("application/grpc-web")) return lastFrame(response, frameFlags.grpcWebTrailer, grpcWebTrailerFrame)
    if (type.startsWith("application/grpc")) return grpcTrailers(response)
    if (type.startsWith("application/connect+")) return lastFrame(response, frameFlags.connectEndStream, connectEndStreamFrame)
    if (response.status === 500 && type.startsWith("application/json")) return connectUnary(response)
    return response
  }
  return Object.assign(wrapped, {
    method: handler.method,
    service: handler.service,
    protocolNames: handler.protocolNames,
    allowedMethods: handler.allowedMethods,
    requestPath: handler.requestPath,
    supportedContentType: handler.supportedContentType
  }) as UniversalHandler
}
