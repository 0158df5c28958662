// The watch scenarios' client side, made cheap: a server stream read straight off HTTP/2 in the Connect protocol,
// and the few fields a stream looks at read off each message's bytes. The streams share the two cores with the
// service; decoding every message whole through Connect's client took one of them (see WatchWorker.ts).
import { connect, type ClientHttp2Session, constants } from "node:http2"
import { type DescMessage, type DescMethodServerStreaming, type MessageInitShape, create, toBinary } from "@bufbuild/protobuf"
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire"

/** An HTTP/2 connection to `baseUrl`; a failure of the connection fails its streams. */
export const session = (baseUrl: string): ClientHttp2Session => {
  const opened = connect(baseUrl)
  opened.on("error", () => undefined)
  return opened
}

const envelope = (flags: number, data: Uint8Array) => {
  const framed = Buffer.alloc(5 + data.length)
  framed[0] = flags
  framed.writeUInt32BE(data.length, 1)
  framed.set(data, 5)
  return framed
}

const compressedFlag = 0b01
const endStreamFlag = 0b10

/** The end-of-stream message's error, as the Connect protocol writes it (JSON). */
const endStreamError = (data: Uint8Array): Error | undefined => {
  const end = JSON.parse(Buffer.from(data).toString("utf8")) as { error?: { code?: string; message?: string } }
  return end.error === undefined ? undefined : new Error(`${end.error.code ?? "unknown"}: ${end.error.message ?? ""}`)
}

/**
 * Calls a server-streaming method in the Connect protocol (binary, uncompressed) on `on` and hands each response
 * message's bytes to `onMessage` as it arrives. Resolves when the stream ends cleanly; rejects with the error the
 * stream ends with (its status, or the end-of-stream message's error), or when `signal` aborts.
 */
export const serverStream = <I extends DescMessage, O extends DescMessage>(
  on: ClientHttp2Session,
  method: DescMethodServerStreaming<I, O>,
  input: MessageInitShape<I>,
  signal: AbortSignal,
  onMessage: (bytes: Uint8Array) => void
): Promise<void> =>
  new Promise((resolve, reject) => {
    const stream = on.request({
      [constants.HTTP2_HEADER_METHOD]: "POST",
      [constants.HTTP2_HEADER_PATH]: `/${method.parent.typeName}/${method.name}`,
      [constants.HTTP2_HEADER_CONTENT_TYPE]: "application/connect+proto",
      "connect-protocol-version": "1"
    })
    let settled = false
    const fail = (error: Error) => {
      if (settled) return
      settled = true
      signal.removeEventListener("abort", abort)
      stream.close(constants.NGHTTP2_CANCEL)
      reject(error)
    }
    const abort = () => fail(new Error("aborted"))
    if (signal.aborted) return abort()
    signal.addEventListener("abort", abort, { once: true })
    stream.on("response", (headers) => {
      const status = headers[":status"]
      if (status !== 200) fail(new Error(`HTTP status ${status}`))
    })
    let buffered: Buffer = Buffer.alloc(0)
    let ended: { readonly error: Error | undefined } | undefined
    stream.on("data", (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
      while (buffered.length >= 5 && !settled) {
        const flags = buffered[0]!
        const length = buffered.readUInt32BE(1)
        if (buffered.length < 5 + length) return
        const data = buffered.subarray(5, 5 + length)
        buffered = buffered.subarray(5 + length)
        if ((flags & compressedFlag) !== 0) return fail(new Error("a compressed message, though none was accepted"))
        if ((flags & endStreamFlag) !== 0) ended = { error: endStreamError(data) }
        else if (ended !== undefined) return fail(new Error("a message after the end of the stream"))
        else onMessage(data)
      }
    })
    stream.on("error", (error: Error) => fail(error))
    stream.on("close", () => {
      if (ended === undefined) return fail(new Error("the stream closed without its end-of-stream message"))
      if (ended.error !== undefined) return fail(ended.error)
      if (settled) return
      settled = true
      signal.removeEventListener("abort", abort)
      resolve()
    })
    stream.end(envelope(0, toBinary(method.input, create(method.input, input))))
  })

/** Reads the fields of one message's bytes: each field is looked up by its number, every other field skipped. */
export class WireFields {
  constructor(private readonly bytes: Uint8Array) {}

  private each(number: number, expected: WireType, read: (reader: BinaryReader) => void) {
    const reader = new BinaryReader(this.bytes)
    while (reader.pos < reader.len) {
      const [field, wireType] = reader.tag()
      if (field !== number) reader.skip(wireType, field)
      else if (wireType === expected) read(reader)
      else throw new Error(`field ${number} has wire type ${wireType}, not ${expected}`)
    }
  }

  /** Every occurrence of a repeated message field. */
  messages(number: number): Array<WireFields> {
    const found: Array<WireFields> = []
    this.each(number, WireType.LengthDelimited, (reader) => found.push(new WireFields(reader.bytes())))
    return found
  }

  /** A singular message field (protobuf merges repeated occurrences; the bench's messages have one). */
  message(number: number): WireFields | undefined {
    return this.messages(number).at(-1)
  }

  string(number: number): string | undefined {
    let value: string | undefined
    this.each(number, WireType.LengthDelimited, (reader) => (value = reader.string()))
    return value
  }

  uint32(number: number): number | undefined {
    let value: number | undefined
    this.each(number, WireType.Varint, (reader) => (value = reader.uint32()))
    return value
  }
}
