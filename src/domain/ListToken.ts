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

/** What a token is bound to: the sort keys and a hash of the filters, of any list (runs, catalog lists). */
export const orderAndFilters = (scope: {
  readonly order: ReadonlyArray<{ readonly field: string; readonly direction: string }>
  readonly filters: ReadonlyArray<{ readonly field: string; readonly fn: string; readonly values: ReadonlyArray<FieldValue> }>
}): string => {
  const order = scope.order.map((key) => `${key.field}:${key.direction}`).join(",")
  const filters = JSON.stringify(scope.filters.map((filter) => [filter.field, filter.fn, filter.values]))
  return `${order}/${fnv1a(filters)}`
}

export const tokenSignature = (scope: TokenScope): string => orderAndFilters(scope)

/** A token bound to `signature` for the page after the row whose sort values are `cursor`. */
export const cursorToken = (signature: string, cursor: ReadonlyArray<FieldValue>): string =>
  Encoding.encodeBase64Url(encodeJson({ v: 1, o: signature, c: cursor }))

/**
 * The cursor of a token made with `signature`, if it is one and each of its values `fits` its sort key (one
 * value per key); undefined otherwise.
 */
export const tokenCursor = (
  signature: string,
  token: string,
  keys: number,
  fits: (value: FieldValue, key: number) => boolean
): ReadonlyArray<FieldValue> | undefined => {
  const decoded = Encoding.decodeBase64UrlString(token).pipe(
    Either.flatMap((json) => decodeJson(json)),
    Either.getOrUndefined
  )
  return decoded !== undefined && decoded.o === signature && decoded.c.length === keys && decoded.c.every(fits)
    ? decoded.c
    : undefined
}

/** The token of the page after the row whose values along `scope.order` are `cursor`. */
export const encodeToken = (scope: TokenScope, cursor: ReadonlyArray<FieldValue>): string =>
  cursorToken(tokenSignature(scope), cursor)

const fitsKind = (value: FieldValue, kind: (typeof listFields)[keyof typeof listFields]): boolean =>
  kind === "text" ? typeof value === "string" : typeof value === "number" && Number.isSafeInteger(value)

/** `""` is the first page; anything that is not a token made for this order and these filters is refused. */
export const decodeToken = (
  scope: TokenScope,
  token: string
): Effect.Effect<ReadonlyArray<FieldValue> | undefined, InvalidArgument> => {
  if (token === "") return Effect.succeed(undefined)
  const cursor = tokenCursor(
    tokenSignature(scope),
    token,
    scope.order.length,
    (value, i) => fitsKind(value, listFields[scope.order[i]!.field])
  )
  return cursor !== undefined ? Effect.succeed(cursor) : Effect.fail(new InvalidArgument({ message: "invalid token" }))
}
