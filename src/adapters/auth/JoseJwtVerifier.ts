import { Clock, Duration, Effect } from "effect"
import { decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from "jose"
import type { Principal, Role } from "../../domain/Access.js"
import { CredentialsUnverifiable, Unauthenticated } from "../../ports/Authenticator.js"
import { type JwksSource, loadKeySet, makeKeyCache } from "./JwksKeys.js"

/** `runs.auth.jwt`: OIDC access or ID tokens, verified against the provider's published keys. */
export interface JwtSettings {
  readonly issuer: string
  /** A token must name at least one of these in `aud`. */
  readonly audiences: ReadonlyArray<string>
  readonly keys: JwksSource
  /** The claim that names the caller (`sub`, `email`, ...); recorded as a run's creator. */
  readonly subjectClaim: string
  /** The claim that lists the caller's roles or scopes: a list of strings, or one space-separated string. */
  readonly rolesClaim: string
  /** Values of `rolesClaim` that make a user; none: every verified token is a user. */
  readonly userRoles: ReadonlyArray<string>
  /** Values of `rolesClaim` that make an executor; none: no token is an executor. */
  readonly executorRoles: ReadonlyArray<string>
  /** Allowed difference between our clock and the provider's, for `exp` and `nbf`. */
  readonly clockSkew: Duration.Duration
  readonly keysMaxAge: Duration.Duration
  readonly keysCooldown: Duration.Duration
}

// Asymmetric algorithms only: a key set is public, so a symmetric (HS*) algorithm would let anyone who reads
// it sign tokens, and "none" is never accepted.
const algorithms = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"]

const keysTimeout = Duration.seconds(10)

/** A claim by its full name (`https://example.com/roles`), else along a dotted path (`realm_access.roles`). */
export const claimAt = (payload: JWTPayload, name: string): unknown => {
  if (Object.hasOwn(payload, name)) return payload[name]
  let node: unknown = payload
  for (const part of name.split(".")) {
    if (typeof node !== "object" || node === null || !Object.hasOwn(node, part)) return undefined
    node = (node as Record<string, unknown>)[part]
  }
  return node
}

const claimValues = (value: unknown): ReadonlyArray<string> =>
  typeof value === "string"
    ? value.split(/\s+/).filter((item) => item !== "")
    : Array.isArray(value)
    ? value.filter((item): item is string => typeof item === "string")
    : []

/** The principal a verified token's claims describe; `undefined` when it names no one. */
export const principalFromClaims = (settings: JwtSettings, payload: JWTPayload): Principal | undefined => {
  const subject = claimAt(payload, settings.subjectClaim)
  if (typeof subject !== "string" || subject.trim() === "") return undefined
  const held = new Set(claimValues(claimAt(payload, settings.rolesClaim)))
  const roles = new Set<Role>()
  if (settings.userRoles.length === 0 || settings.userRoles.some((role) => held.has(role))) roles.add("user")
  if (settings.executorRoles.some((role) => held.has(role))) roles.add("executor")
  return { subject: subject.trim(), roles }
}

const reasonOf = (error: unknown): string =>
  error instanceof errors.JOSEError ? `${error.code}: ${error.message}` : error instanceof Error ? error.message : String(error)

const isUnknownKey = (error: unknown) => error instanceof errors.JWKSNoMatchingKey

/** Verifies a bearer JWT: signature by a published key, issuer, audience, expiry and not-before. */
export const makeJwtVerifier = (settings: JwtSettings) =>
  Effect.gen(function*() {
    const keys = yield* makeKeyCache({
      load: loadKeySet(settings.keys, keysTimeout),
      maxAge: settings.keysMaxAge,
      cooldown: settings.keysCooldown
    })
    const options = {
      issuer: settings.issuer,
      audience: [...settings.audiences],
      algorithms,
      // A token without an expiry would stay valid for ever once issued (or leaked).
      requiredClaims: ["exp"],
      clockTolerance: Duration.toSeconds(settings.clockSkew)
    }
    const verifyWith = (getKey: JWTVerifyGetKey, token: string) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.tryPromise({
          try: () => jwtVerify(token, getKey, { ...options, currentDate: new Date(now) }),
          catch: (error) => error
        }))

    return (token: string): Effect.Effect<Principal, Unauthenticated | CredentialsUnverifiable> =>
      Effect.gen(function*() {
        // Checked before any key is loaded, so garbage never makes the service fetch keys.
        yield* Effect.try({
          try: () => decodeProtectedHeader(token),
          catch: (error) => new Unauthenticated({ reason: `not a JWT: ${reasonOf(error)}` })
        })
        const getKey = yield* Effect.mapError(keys.current, (e) => new CredentialsUnverifiable({ reason: e.reason }))
        const verified = yield* verifyWith(getKey, token).pipe(
          Effect.catchIf(isUnknownKey, () =>
            keys.afterUnknownKey(getKey).pipe(
              Effect.mapError((e) => new CredentialsUnverifiable({ reason: e.reason })),
              Effect.flatMap((reloaded) => verifyWith(reloaded, token))
            )),
          Effect.mapError((error) =>
            error instanceof CredentialsUnverifiable ? error : new Unauthenticated({ reason: reasonOf(error) })
          )
        )
        const principal = principalFromClaims(settings, verified.payload)
        if (principal === undefined) {
          return yield* new Unauthenticated({ reason: `the token has no ${settings.subjectClaim} claim` })
        }
        return principal
      })
  })
