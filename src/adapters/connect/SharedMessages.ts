import { create, type DescMessage, fromBinary, type MessageInitShape, type MessageShape, toBinary } from "@bufbuild/protobuf"
import { EmptySchema } from "@bufbuild/protobuf/wkt"
import type { HandlerContext } from "@connectrpc/connect"

/** True when the request (and so the response) is in the protobuf binary format, not JSON. */
export const isBinary = (context: HandlerContext) => !(context.requestHeader.get("content-type") ?? "").includes("json")

/**
 * Response messages built from values that many streams send (a watch update goes to every watcher of the
 * run): each is built once per value and, for binary streams, encoded once when a second stream sends it. The
 * encoded message carries its bytes as unknown fields, which protobuf-es writes back as they are, so each
 * further stream copies bytes instead of encoding the message again. JSON streams get the built message, and so
 * does the first binary stream (a value only one stream sends, such as a slow watcher's merged updates, is
 * encoded once either way). Each stream takes its sender once, `(binary) => (value) => message`, when it opens.
 */
export const sharedMessages = <Desc extends DescMessage, A extends object>(
  schema: Desc,
  build: (value: A) => MessageInitShape<Desc>
) => {
  const built = new WeakMap<A, { readonly message: MessageShape<Desc>; sent: boolean; encoded?: MessageShape<Desc> }>()
  return (binary: boolean) => (value: A): MessageShape<Desc> => {
    let entry = built.get(value)
    if (entry === undefined) {
      entry = { message: create(schema, build(value)), sent: false }
      built.set(value, entry)
    }
    if (!binary) return entry.message
    if (!entry.sent) {
      entry.sent = true
      return entry.message
    }
    if (entry.encoded === undefined) {
      const encoded = create(schema)
      const fields = fromBinary(EmptySchema, toBinary(schema, entry.message)).$unknown
      if (fields !== undefined) encoded.$unknown = fields
      entry.encoded = encoded
    }
    return entry.encoded
  }
}
