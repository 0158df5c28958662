import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Logger } from "effect"
import * as BearerAuthenticator from "../../../src/adapters/auth/BearerAuthenticator.js"
import { Authenticator } from "../../../src/ports/Authenticator.js"
import { jwtSettings, keySet, serveJwks, signingKey, staticToken, token } from "../../support/Auth.js"

const secret = "executor-secret-0123456789abcdef"

/** The log lines written while `layer` is built. */
const startupLog = (layer: Layer.Layer<Authenticator>) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const logger = Logger.make(({ logLevel, message }) => lines.push(`${logLevel.label} ${String(message)}`))
    yield* Layer.build(layer).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
    return lines
  })

const outcome = (authorization: string) =>
  Effect.flatMap(Authenticator, (auth) => auth.authenticate(authorization)).pipe(
    Effect.match({ onFailure: (e) => e._tag, onSuccess: (p) => ({ subject: p.subject, roles: [...p.roles] }) })
  )

describe("BearerAuthenticator", () => {
  it.scopedLive("a static token names its principal; anything else goes to JWT verification when configured", () =>
    Effect.gen(function*() {
      const key = yield* signingKey("k1")
      const jwks = yield* serveJwks(keySet(key))
      const withJwt = BearerAuthenticator.layer({
        enabled: true,
        tokens: [staticToken("executor", "actions", secret)],
        jwt: jwtSettings({ url: jwks.url })
      })
      yield* Effect.gen(function*() {
        expect(yield* outcome(secret)).toEqual({ subject: "actions", roles: ["executor"] })
        expect(yield* outcome(yield* token(key, { sub: "alice" }))).toEqual({ subject: "alice", roles: ["user"] })
        expect(yield* outcome(`${secret}x`)).toBe("Unauthenticated")
      }).pipe(Effect.provide(withJwt))
      const tokensOnly = BearerAuthenticator.layer({ enabled: true, tokens: [staticToken("user", "ci", secret)], jwt: undefined })
      yield* Effect.gen(function*() {
        expect(yield* outcome(secret)).toEqual({ subject: "ci", roles: ["user"] })
        expect(yield* outcome(yield* token(key, { sub: "alice" }))).toBe("Unauthenticated")
      }).pipe(Effect.provide(tokensOnly))
    }))

  it.scoped("says at start-up whether calls are checked, and warns when runs.auth settings are ignored", () =>
    Effect.gen(function*() {
      expect(yield* startupLog(BearerAuthenticator.layer({ enabled: false }))).toEqual(["INFO auth: off (every caller is served)"])
      expect(yield* startupLog(BearerAuthenticator.layer({ enabled: false, ignored: true }))).toEqual([
        "WARN auth: off (every caller is served): runs.auth settings are ignored while runs.auth.enabled is false"
      ])
      const on = BearerAuthenticator.layer({ enabled: true, tokens: [staticToken("user", "ci", secret)], jwt: undefined })
      expect(yield* startupLog(on)).toEqual(["INFO auth: bearer tokens required (1 static token(s))"])
    }))
})
