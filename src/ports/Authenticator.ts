import { Context, Data, type Effect } from "effect"
import type { Principal } from "../domain/Access.js"

/** The credential proves no one. `reason` is for the log only: callers never learn which part was wrong. */
export class Unauthenticated extends Data.TaggedError("Unauthenticated")<{ readonly reason: string }> {}

/** The keys that would verify the credential cannot be loaded now (an identity provider that is down). */
export class CredentialsUnverifiable extends Data.TaggedError("CredentialsUnverifiable")<{ readonly reason: string }> {}

/** Who is calling, from the bearer token a request carries (`runs.auth`). */
export class Authenticator extends Context.Tag("runs/Authenticator")<Authenticator, {
  /** False when authentication is off: calls need no credential and are served without a principal. */
  readonly enabled: boolean
  /** The principal a bearer token proves, with the roles it grants (possibly none). */
  readonly authenticate: (token: string) => Effect.Effect<Principal, Unauthenticated | CredentialsUnverifiable>
}>() {}
