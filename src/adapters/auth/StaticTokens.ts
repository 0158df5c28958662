import { createHash } from "node:crypto"
import { Redacted } from "effect"
import type { Principal, Role } from "../../domain/Access.js"

/** A long-lived secret for a machine (an executor, a CI job), with the one role it grants. */
export interface StaticToken {
  /** The principal's subject, e.g. `actions-service`. */
  readonly name: string
  readonly role: Role
  readonly token: Redacted.Redacted<string>
}

const digest = (token: string) => createHash("sha256").update(token, "utf8").digest("base64")

/**
 * The principal a static token names, if any. Tokens are looked up by their SHA-256 digest, so the time a lookup
 * takes depends on the digest, not on how much of a real token the caller guessed, and the tokens themselves
 * are not kept in memory as map keys.
 */
export const makeStaticTokens = (tokens: ReadonlyArray<StaticToken>): (token: string) => Principal | undefined => {
  const byDigest = new Map<string, Principal>(
    tokens.map((entry) => [digest(Redacted.value(entry.token)), { subject: entry.name, roles: new Set([entry.role]) }])
  )
  return (token) => (byDigest.size === 0 ? undefined : byDigest.get(digest(token)))
}
