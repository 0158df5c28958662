import { create, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf"
import type { HandlerContext } from "@connectrpc/connect"
import { binaryMessage } from "./BinaryEncoding.js"

/** True when the request (and so the response) is in the protobuf binary format, not JSON. */
export const isBinary = (context: HandlerContext) => !(context.requestHeader.get("content-type") ?? "").includes("json")

/**
 * Response messages built from values that many streams send (a watch update goes to every watcher of the
 * run): each is built once per value and, for binary streams, encoded once per value (`binaryMessage`), so
 * each stream copies bytes instead of encoding the message again. JSON streams get the built message. Each
 * stream takes its sender once, `(binary) => (value) => message`, when it opens.
 */
export const sharedMessages = <Desc extends DescMessage, A extends object>(
  schema: Desc,
  build: (value: A) => MessageInitShape<Desc>
) => {
  const built = new WeakMap<A, { readonly message: MessageShape<Desc>; encoded?: MessageShape<Desc> }>()
  const entryOf = (value: A) => {
    let entry = built.get(value)
    if (entry === undefined) {
      entry = { message: create(schema, build(value)) }
      built.set(value, entry)
    }
    return entry
  }
  return (binary: boolean) =>
    binary
      ? (value: A): MessageShape<Desc> => {
        const entry = entryOf(value)
        return (entry.encoded ??= binaryMessage(schema, entry.message))
      }
      : (value: A): MessageShape<Desc> => entryOf(value).message
}
