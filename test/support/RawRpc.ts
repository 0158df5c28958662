import * as http2 from "node:http2"

/**
 * One call of any procedure with the body given byte for byte, over HTTP/2, in the Connect or gRPC protocol,
 * and the answer as the wire carried it: what a client that sends broken or hostile bytes sees. No client
 * library is involved, so nothing is checked or fixed on the way.
 */

export type Protocol = "connect-proto" | "connect-json" | "grpc"

export interface RawCall {
  readonly path: string
  readonly protocol: Protocol
  /** Unary in the Connect protocol sends the body as it is; every streaming call and gRPC envelope it. */
  readonly streaming: boolean
  readonly body: Uint8Array
  /** `gzip` sends the body (or envelope) flagged compressed with that encoding; `flag-only` flags it without one. */
  readonly compression?: "gzip" | "flag-only"
  /** How long a stream that is open and has sent nothing is given before it is cancelled (it is healthy). */
  readonly quietMs: number
  /** Headers sent besides the protocol's own (an `authorization`, say). */
  readonly headers?: Readonly<Record<string, string>>
}

export interface RawAnswer {
  /** The error code the protocol reported (`ok` when none): Connect's code names, gRPC's as numbers' names;
   * `open` for a stream that answered nothing, not even its headers, within `quietMs`. */
  readonly code: string
  readonly message: string
  /** Each message the server sent, undecoded. */
  readonly messages: ReadonlyArray<Uint8Array>
  readonly httpStatus: number
}

const grpcCodeNames = [
  "ok", "canceled", "unknown", "invalid_argument", "deadline_exceeded", "not_found", "already_exists",
  "permission_denied", "resource_exhausted", "failed_precondition", "aborted", "out_of_range", "unimplemented",
  "internal", "unavailable", "data_loss", "unauthenticated"
]

const envelope = (flags: number, data: Uint8Array): Uint8Array => {
  const out = new Uint8Array(5 + data.byteLength)
  out[0] = flags
  new DataView(out.buffer).setUint32(1, data.byteLength)
  out.set(data, 5)
  return out
}

const frames = (bytes: Uint8Array): Array<{ flags: number; data: Uint8Array }> => {
  const out: Array<{ flags: number; data: Uint8Array }> = []
  let at = 0
  while (at + 5 <= bytes.byteLength) {
    const length = new DataView(bytes.buffer, bytes.byteOffset + at, 5).getUint32(1)
    if (at + 5 + length > bytes.byteLength) break
    out.push({ flags: bytes[at]!, data: bytes.subarray(at + 5, at + 5 + length) })
    at += 5 + length
  }
  return out
}

const parseJson = (bytes: Uint8Array): { code?: string; message?: string; error?: { code?: string; message?: string } } => {
  try {
    return JSON.parse(Buffer.from(bytes).toString("utf8")) as never
  } catch {
    return { code: "unparseable answer", message: Buffer.from(bytes.subarray(0, 200)).toString("utf8") }
  }
}

const headersFor = (call: RawCall): http2.OutgoingHttpHeaders => {
  const json = call.protocol === "connect-json"
  const headers: http2.OutgoingHttpHeaders = { ...call.headers, ":method": "POST", ":path": call.path }
  if (call.protocol === "grpc") {
    headers["content-type"] = "application/grpc+proto"
    headers["te"] = "trailers"
    if (call.compression === "gzip") headers["grpc-encoding"] = "gzip"
  } else if (call.streaming) {
    headers["content-type"] = json ? "application/connect+json" : "application/connect+proto"
    headers["connect-protocol-version"] = "1"
    if (call.compression === "gzip") headers["connect-content-encoding"] = "gzip"
  } else {
    headers["content-type"] = json ? "application/json" : "application/proto"
    headers["connect-protocol-version"] = "1"
    if (call.compression === "gzip") headers["content-encoding"] = "gzip"
  }
  return headers
}

/** Sends one call on `session` and reads its whole answer (a quiet open stream is cancelled after `quietMs`). */
export const rawCall = (session: http2.ClientHttp2Session, call: RawCall): Promise<RawAnswer> =>
  new Promise((resolve, reject) => {
    const enveloped = call.protocol === "grpc" || call.streaming
    const body = enveloped ? envelope(call.compression === undefined ? 0 : 1, call.body) : call.body
    const stream = session.request(headersFor(call))
    const chunks: Array<Buffer> = []
    let status = 0
    let headerStatus: string | undefined
    let headerMessage: string | undefined
    let trailers: http2.IncomingHttpHeaders | undefined
    let quiet: NodeJS.Timeout | undefined
    let settled = false
    let quietlyOpen = false
    const finish = () => {
      if (settled) return
      settled = true
      if (quiet !== undefined) clearTimeout(quiet)
      resolve(
        quietlyOpen && status === 0
          ? { code: "open", message: "", messages: [], httpStatus: 0 }
          : answerOf(call, status, Buffer.concat(chunks), trailers, headerStatus, headerMessage)
      )
    }
    stream.on("response", (headers) => {
      status = Number(headers[":status"])
      headerStatus = headers["grpc-status"] as string | undefined
      headerMessage = headers["grpc-message"] as string | undefined
    })
    stream.on("trailers", (headers) => {
      trailers = headers
    })
    stream.on("data", (chunk: Buffer) => {
      chunks.push(chunk)
      // A stream that has sent one whole message is alive and well: stop reading it.
      if (call.streaming && frames(Buffer.concat(chunks)).some((frame) => frame.flags === 0)) {
        stream.close(http2.constants.NGHTTP2_CANCEL)
        finish()
      }
    })
    stream.on("end", finish)
    stream.on("close", finish)
    stream.on("error", (error) => {
      if (!settled) reject(error)
    })
    if (call.streaming) {
      quiet = setTimeout(() => {
        quietlyOpen = true
        stream.close(http2.constants.NGHTTP2_CANCEL)
        finish()
      }, call.quietMs)
    }
    stream.end(body)
  })

const answerOf = (
  call: RawCall,
  httpStatus: number,
  bytes: Uint8Array,
  trailers: http2.IncomingHttpHeaders | undefined,
  headerStatus: string | undefined,
  headerMessage: string | undefined
): RawAnswer => {
  if (call.protocol === "grpc") {
    const grpcStatus = (trailers?.["grpc-status"] as string | undefined) ?? headerStatus
    const message = decodeURIComponent((trailers?.["grpc-message"] as string | undefined) ?? headerMessage ?? "")
    const code = grpcStatus === undefined ? "ok" : grpcCodeNames[Number(grpcStatus)] ?? `grpc ${grpcStatus}`
    return { code, message, messages: frames(bytes).filter((f) => f.flags === 0).map((f) => f.data), httpStatus }
  }
  if (call.streaming) {
    const all = frames(bytes)
    const end = all.find((f) => (f.flags & 2) === 2)
    const error = end === undefined ? undefined : parseJson(end.data).error
    return {
      code: httpStatus !== 200 ? `http ${httpStatus}` : error?.code ?? "ok",
      message: error?.message ?? "",
      messages: all.filter((f) => f.flags === 0).map((f) => f.data),
      httpStatus
    }
  }
  if (httpStatus === 200) return { code: "ok", message: "", messages: [bytes], httpStatus }
  const error = parseJson(bytes)
  return { code: error.code ?? `http ${httpStatus}`, message: error.message ?? "", messages: [], httpStatus }
}
