import { Option, Schema } from "effect"
import type { Change, ChangeKind } from "../../ports/ChangeFeed.js"

/** Postgres refuses a NOTIFY payload of 8,000 bytes or more; stay well under. */
export const maxPayloadBytes = 7_900

const kindCodes: Readonly<Record<ChangeKind, "c" | "u" | "e" | "d">> = {
  created: "c",
  updated: "u",
  events: "e",
  deleted: "d"
}
const kindsByCode = { c: "created", u: "updated", e: "events", d: "deleted" } as const

/** `{"o": origin, "c": [[project, domain, run, action, kind], ...]}`: keys only, never state. */
const Notification = Schema.parseJson(Schema.Struct({
  o: Schema.String,
  c: Schema.Array(Schema.Tuple(Schema.String, Schema.String, Schema.String, Schema.String, Schema.Literal("c", "u", "e", "d")))
}))

const encodeChange = (change: Change) =>
  JSON.stringify([change.action.run.project, change.action.run.domain, change.action.run.name, change.action.name, kindCodes[change.kind]])

/** The changes as few payloads as fit, each under `maxPayloadBytes`, in order. */
export const encodeNotifications = (origin: string, changes: ReadonlyArray<Change>): ReadonlyArray<string> => {
  const head = `{"o":${JSON.stringify(origin)},"c":[`
  const payloads: Array<string> = []
  let items: Array<string> = []
  let size = Buffer.byteLength(head) + 2
  for (const change of changes) {
    const item = encodeChange(change)
    const bytes = Buffer.byteLength(item) + 1
    if (items.length > 0 && size + bytes > maxPayloadBytes) {
      payloads.push(`${head}${items.join(",")}]}`)
      items = []
      size = Buffer.byteLength(head) + 2
    }
    items.push(item)
    size += bytes
  }
  if (items.length > 0) payloads.push(`${head}${items.join(",")}]}`)
  return payloads
}

/** A payload's origin and changes; none when it is not one of ours. */
export const decodeNotification = (
  payload: string
): Option.Option<{ readonly origin: string; readonly changes: ReadonlyArray<Change> }> =>
  Option.map(Schema.decodeUnknownOption(Notification)(payload), (decoded) => ({
    origin: decoded.o,
    changes: decoded.c.map(([project, domain, name, action, kind]) => ({
      action: { run: { project, domain, name }, name: action },
      kind: kindsByCode[kind]
    }))
  }))
