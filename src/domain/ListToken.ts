import { Effect, Either, Encoding, Schema } from "effect"
import { InvalidArgument } from "./Errors.js"
import type { FieldValue, ListQuery } from "./ListQuery.js"
import { listFields } from "./ListQuery.js"

/**
 * The page token: an opaque keyset cursor, base64url of `{ v: 1, o: <signature>, c: <cursor> }`. The
 * signature names the order and a hash of the filters, so a token is refused when the client changed either
 * between pages (its cursor would point into a different sequence).
 */
const TokenJson = Schema.parseJson(Schema.Struct({
  v: Schema.Literal(1),
  o: Schema.String,
  c: Schema.Array(Schema.Union(Schema.String, Schema.Number))
}))

const decodeJson = Schema.decodeUnknownEither(TokenJson)
const encodeJson = Schema.encodeSync(TokenJson)

export type TokenScope = Pick<ListQuery, "order" | "filters">

/** FNV-1a (32 bits): stable across processes and versions, unlike a runtime's own hash. */
export const fnv1a = (text: string): string => {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193) >>> 0
  }
  return hash.toString(16).padStart(8, "0")
}

export const tokenSignature = (scope: TokenScope): string => {
  const order = scope.order.map((key) => `${key.field}:${key.direction}`).join(",")
  const filters = JSON.stringify(scope.filters.map((filter) => [filter.field, filter.fn, filter.values]))
  return `${order}/${fnv1a(filters)}`
}

/** The token of the page after the row whose values along `scope.order` are `cursor`. */
export const encodeToken = (scope: TokenScope, cursor: ReadonlyArray<FieldValue>): string =>
  Encoding.encodeBase64Url(encodeJson({ v: 1, o: tokenSignature(scope), c: cursor }))

const fitsKind = (value: FieldValue, kind: (typeof listFields)[keyof typeof listFields]): boolean =>
  kind === "text" ? typeof value === "string" : typeof value === "number" && Number.isSafeInteger(value)

/** `""` is the first page; anything that is not a token made for this order and these filters is refused. */
export const decodeToken = (
  scope: TokenScope,
  token: string
): Effect.Effect<ReadonlyArray<FieldValue> | undefined, InvalidArgument> => {
  if (token === "") return Effect.succeed(undefined)
  const decoded = Encoding.decodeBase64UrlString(token).pipe(
    Either.flatMap((json) => decodeJson(json)),
    Either.getOrUndefined
  )
  const valid = decoded !== undefined &&
    decoded.o === tokenSignature(scope) &&
    decoded.c.length === scope.order.length &&
    decoded.c.every((value, i) => fitsKind(value, listFields[scope.order[i]!.field]))
  return valid ? Effect.succeed(decoded.c) : Effect.fail(new InvalidArgument({ message: "invalid token" }))
}
