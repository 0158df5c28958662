import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Queue, TestClock } from "effect"
import { base64url } from "jose"
import { makeJwtVerifier, principalFromClaims } from "../../../src/adapters/auth/JoseJwtVerifier.js"
import { jwtSettings, keySet, serveJwks, signingKey, tempDir, token } from "../../support/Auth.js"

/** The tag of the failure, or the principal as plain data. */
const outcome = <E extends { readonly _tag: string }>(
  effect: Effect.Effect<{ readonly subject: string; readonly roles: ReadonlySet<string> }, E>
) =>
  Effect.match(effect, {
    onFailure: (error) => error._tag,
    onSuccess: (principal) => ({ subject: principal.subject, roles: [...principal.roles].sort() })
  })

const fetches = <A>(requests: Queue.Queue<A>) => Queue.size(requests)

describe("JWT verification", () => {
  it.scopedLive("a token from the issuer, for the audience, signed by a published key, names its caller and roles", () =>
    Effect.gen(function*() {
      const key = yield* signingKey("k1")
      const jwks = yield* serveJwks(keySet(key))
      const verify = yield* makeJwtVerifier(jwtSettings({ url: jwks.url }))
      expect(yield* outcome(verify(yield* token(key, { sub: "alice" })))).toEqual({ subject: "alice", roles: ["user"] })
      expect(yield* outcome(verify(yield* token(key, { sub: "exec", scope: "openid runs:executor" })))).toEqual({
        subject: "exec",
        roles: ["executor", "user"]
      })
      expect(yield* fetches(jwks.requests)).toBe(1)
    }))

  it.scopedLive("wrong signature, issuer, audience, expiry, algorithm, no expiry or a missing subject prove no one", () =>
    Effect.gen(function*() {
      const key = yield* signingKey("k1")
      const impostor = yield* signingKey("k1")
      const jwks = yield* serveJwks(keySet(key))
      const verify = yield* makeJwtVerifier(jwtSettings({ url: jwks.url }))
      const valid = yield* token(key, { sub: "alice" })
      const [header, payload] = valid.split(".")
      const unsigned = `${base64url.encode(JSON.stringify({ alg: "none", kid: "k1" }))}.${payload}.`
      const bad = {
        "wrong signature": yield* token(impostor, { sub: "alice" }),
        "wrong issuer": yield* token(key, { sub: "alice" }, { issuer: "https://other.example" }),
        "wrong audience": yield* token(key, { sub: "alice" }, { audience: "another-service" }),
        expired: yield* token(key, { sub: "alice" }, { expiresIn: -3600 }),
        "no expiry": yield* token(key, { sub: "alice" }, { expiresIn: null }),
        "not yet valid": yield* token(key, { sub: "alice", nbf: Math.floor(Date.now() / 1000) + 3600 }),
        "alg none": unsigned,
        "tampered claims": `${header}.${base64url.encode(JSON.stringify({ sub: "root", iss: "x" }))}.${valid.split(".")[2]}`,
        "no subject": yield* token(key, {})
      }
      for (const [name, jwt] of Object.entries(bad)) {
        expect(yield* outcome(verify(jwt)), name).toBe("Unauthenticated")
      }
    }))

  it.scopedLive("garbage is refused before any key is fetched", () =>
    Effect.gen(function*() {
      const jwks = yield* serveJwks(keySet(yield* signingKey("k1")))
      const verify = yield* makeJwtVerifier(jwtSettings({ url: jwks.url }))
      expect(yield* outcome(verify("not-a-token"))).toBe("Unauthenticated")
      expect(yield* outcome(verify("a.b.c"))).toBe("Unauthenticated")
      expect(yield* fetches(jwks.requests)).toBe(0)
    }))

  it.scopedLive("URL: after the provider rotates its keys, a token signed by the new key is accepted", () =>
    Effect.gen(function*() {
      const oldKey = yield* signingKey("old")
      const newKey = yield* signingKey("new")
      const jwks = yield* serveJwks(keySet(oldKey))
      const verify = yield* makeJwtVerifier(jwtSettings({ url: jwks.url }))
      expect(yield* outcome(verify(yield* token(oldKey, { sub: "alice" })))).toMatchObject({ subject: "alice" })
      expect(yield* outcome(verify(yield* token(newKey, { sub: "bob" })))).toBe("Unauthenticated")
      yield* jwks.publish(keySet(oldKey, newKey))
      expect(yield* outcome(verify(yield* token(newKey, { sub: "bob" })))).toMatchObject({ subject: "bob" })
      // One load at first use, one for each token whose key the set lacked.
      expect(yield* fetches(jwks.requests)).toBe(3)
      expect(yield* outcome(verify(yield* token(oldKey, { sub: "alice" })))).toMatchObject({ subject: "alice" })
      expect(yield* fetches(jwks.requests)).toBe(3)
    }))

  it.scopedLive("file: the file is read again when a token names a key it lacks", () =>
    Effect.gen(function*() {
      const file = join(yield* tempDir, "jwks.json")
      const oldKey = yield* signingKey("old")
      const newKey = yield* signingKey("new")
      writeFileSync(file, JSON.stringify(keySet(oldKey)))
      const verify = yield* makeJwtVerifier(jwtSettings({ file }))
      expect(yield* outcome(verify(yield* token(oldKey, { sub: "alice" })))).toMatchObject({ subject: "alice" })
      writeFileSync(file, JSON.stringify(keySet(newKey)))
      expect(yield* outcome(verify(yield* token(newKey, { sub: "bob" })))).toMatchObject({ subject: "bob" })
      // The old key left the file, and the set in memory is the file's now.
      expect(yield* outcome(verify(yield* token(oldKey, { sub: "alice" })))).toBe("Unauthenticated")
    }))

  it.scopedLive("an unknown key within the cooldown does not fetch the keys again", () =>
    Effect.gen(function*() {
      const key = yield* signingKey("k1")
      const jwks = yield* serveJwks(keySet(key))
      const verify = yield* makeJwtVerifier(jwtSettings({ url: jwks.url }, { keysCooldown: Duration.hours(1) }))
      expect(yield* outcome(verify(yield* token(key, { sub: "alice" })))).toMatchObject({ subject: "alice" })
      for (const kid of ["made-up-1", "made-up-2", "made-up-3"]) {
        expect(yield* outcome(verify(yield* token(yield* signingKey(kid), { sub: "x" })))).toBe("Unauthenticated")
      }
      expect(yield* fetches(jwks.requests)).toBe(1)
    }))

  it.scopedLive("keys that cannot be loaded make tokens unverifiable, not invalid, until the provider is back", () =>
    Effect.gen(function*() {
      const key = yield* signingKey("k1")
      const jwks = yield* serveJwks(keySet(key))
      yield* jwks.publish("down")
      const verify = yield* makeJwtVerifier(jwtSettings({ url: jwks.url }))
      const jwt = yield* token(key, { sub: "alice" })
      expect(yield* outcome(verify(jwt))).toBe("CredentialsUnverifiable")
      yield* jwks.publish(keySet(key))
      expect(yield* outcome(verify(jwt))).toMatchObject({ subject: "alice" })
    }))

  it.scopedLive("a key set that is not one makes tokens unverifiable", () =>
    Effect.gen(function*() {
      const file = join(yield* tempDir, "jwks.json")
      writeFileSync(file, JSON.stringify({ keys: ["not a key"] }))
      const verify = yield* makeJwtVerifier(jwtSettings({ file }))
      expect(yield* outcome(verify(yield* token(yield* signingKey("k1"), { sub: "alice" })))).toBe("CredentialsUnverifiable")
    }))

  it.scoped("keys older than jwksMaxAge are fetched again, and kept when the provider is down", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.now())
      const key = yield* signingKey("k1")
      const jwks = yield* serveJwks(keySet(key))
      const verify = yield* makeJwtVerifier(jwtSettings({ url: jwks.url }, { keysMaxAge: Duration.minutes(10) }))
      const jwt = yield* token(key, { sub: "alice" }, { expiresIn: 3600 })
      expect(yield* outcome(verify(jwt))).toMatchObject({ subject: "alice" })
      yield* TestClock.adjust(Duration.minutes(9))
      expect(yield* outcome(verify(jwt))).toMatchObject({ subject: "alice" })
      expect(yield* fetches(jwks.requests)).toBe(1)
      yield* jwks.publish("down")
      yield* TestClock.adjust(Duration.minutes(2))
      expect(yield* outcome(verify(jwt))).toMatchObject({ subject: "alice" })
      expect(yield* fetches(jwks.requests)).toBe(2)
    }))
})

describe("claims", () => {
  const settings = jwtSettings({ url: "http://unused.example" })

  it("roles come from a list or a space-separated string, by full claim name or dotted path", () => {
    const roles = (overrides: Partial<typeof settings>, claims: Record<string, unknown>) =>
      [...(principalFromClaims({ ...settings, ...overrides }, { sub: "s", ...claims })?.roles ?? [])].sort()
    expect(roles({ rolesClaim: "realm_access.roles" }, { realm_access: { roles: ["runs:executor"] } }))
      .toEqual(["executor", "user"])
    expect(roles({ rolesClaim: "https://example.com/roles" }, { "https://example.com/roles": ["runs:executor"] }))
      .toEqual(["executor", "user"])
    expect(roles({ userRoles: ["runs:user"] }, { scope: "openid runs:user" })).toEqual(["user"])
    expect(roles({ userRoles: ["runs:user"] }, { scope: "openid" })).toEqual([])
    expect(roles({ userRoles: ["runs:user"] }, { scope: ["runs:user", 3] })).toEqual(["user"])
    expect(roles({}, { scope: { nested: "runs:executor" } })).toEqual(["user"])
  })

  it("the subject comes from the configured claim", () => {
    expect(principalFromClaims({ ...settings, subjectClaim: "email" }, { sub: "123", email: "a@example.com" })?.subject)
      .toBe("a@example.com")
    expect(principalFromClaims({ ...settings, subjectClaim: "email" }, { sub: "123" })).toBeUndefined()
    expect(principalFromClaims(settings, { sub: "  " })).toBeUndefined()
  })
})
