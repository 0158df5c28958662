import { createHash } from "node:crypto"

/**
 * A statement that begins with this comment runs on Postgres as a named prepared statement, parsed and planned
 * once per connection instead of on every call (the driver of `@effect/sql-pg` sends each statement unnamed).
 * For statements whose text does not vary with their parameters, since each text stays prepared on every
 * connection for its life. SQLite reads it as a comment (it prepares and caches every statement anyway).
 */
export const preparedMarker = "/* prepared */"

const preparedNames = new Map<string, string>()

/** `client.query(text, values, callback)` as a named statement when `text` is marked; other calls as they are. */
export const preparedQuery = (args: ReadonlyArray<unknown>): ReadonlyArray<unknown> => {
  const [text, values, callback] = args
  if (args.length !== 3 || typeof text !== "string" || !text.startsWith(preparedMarker)) return args
  let name = preparedNames.get(text)
  if (name === undefined) {
    name = `runs_${createHash("sha256").update(text).digest("hex").slice(0, 32)}`
    preparedNames.set(text, name)
  }
  return [{ name, text, values }, callback]
}
