import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Duration, Effect, Queue, Redacted } from "effect"
import { type CryptoKey, exportJWK, generateKeyPair, type JSONWebKeySet, type JWK, type JWTPayload, SignJWT } from "jose"
import type { JwtSettings } from "../../src/adapters/auth/JoseJwtVerifier.js"
import type { JwksSource } from "../../src/adapters/auth/JwksKeys.js"
import type { StaticToken } from "../../src/adapters/auth/StaticTokens.js"
import type { TlsSettings } from "../../src/adapters/http/Tls.js"

export const issuer = "https://idp.example"
export const audience = "runs-service"

/** An ES256 key pair; its public JWK carries the kid and algorithm, as an identity provider publishes it. */
export interface SigningKey {
  readonly kid: string
  readonly privateKey: CryptoKey
  readonly jwk: JWK
}

export const signingKey = (kid: string): Effect.Effect<SigningKey> =>
  Effect.promise(async () => {
    const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true })
    return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" } }
  })

export const keySet = (...keys: ReadonlyArray<SigningKey>): JSONWebKeySet => ({ keys: keys.map((key) => key.jwk) })

/** A token signed by `key`; issuer and audience are the test's unless overridden, `expiresIn` seconds from now. */
export const token = (
  key: SigningKey,
  claims: JWTPayload,
  options: {
    readonly issuer?: string
    readonly audience?: string
    /** Seconds from now; `null`: no `exp` claim. */
    readonly expiresIn?: number | null
    readonly kid?: string
  } = {}
): Effect.Effect<string> =>
  Effect.promise(() => {
    const now = Math.floor(Date.now() / 1000)
    const jwt = new SignJWT(claims)
      .setProtectedHeader({ alg: "ES256", kid: options.kid ?? key.kid })
      .setIssuer(options.issuer ?? issuer)
      .setAudience(options.audience ?? audience)
      .setIssuedAt(now)
    if (options.expiresIn !== null) jwt.setExpirationTime(now + (options.expiresIn ?? 300))
    return jwt.sign(key.privateKey)
  })

/** A local JWKS endpoint whose key set the test changes; each request it answers is put on `requests`. */
export const serveJwks = (initial: JSONWebKeySet) =>
  Effect.gen(function*() {
    let current: JSONWebKeySet | "down" = initial
    const requests = yield* Queue.unbounded<void>()
    const server = http.createServer((_req, res) => {
      Queue.unsafeOffer(requests, undefined)
      if (current === "down") {
        res.writeHead(503).end()
        return
      }
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(current))
    })
    yield* Effect.acquireRelease(
      Effect.async<void>((resume) => {
        server.listen(0, "127.0.0.1", () => resume(Effect.void))
      }),
      () => Effect.promise(() => new Promise<void>((done) => server.close(() => done())))
    )
    const port = (server.address() as AddressInfo).port
    return {
      url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
      requests,
      publish: (keys: JSONWebKeySet | "down") => Effect.sync(() => {
        current = keys
      })
    }
  })

/** The JWT settings the tests use, over the given key source. */
export const jwtSettings = (keys: JwksSource, overrides: Partial<JwtSettings> = {}): JwtSettings => ({
  issuer,
  audiences: [audience],
  keys,
  subjectClaim: "sub",
  rolesClaim: "scope",
  userRoles: [],
  executorRoles: ["runs:executor"],
  clockSkew: Duration.seconds(5),
  keysMaxAge: Duration.minutes(10),
  keysCooldown: Duration.zero,
  ...overrides
})

export const staticToken = (role: StaticToken["role"], name: string, secret: string): StaticToken => ({
  role,
  name,
  token: Redacted.make(secret)
})

/** A temporary directory removed with the scope. */
export const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "runs-auth-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

/**
 * A self-signed certificate for 127.0.0.1 and localhost, made with the openssl command line (present on CI
 * machines), with its key; the certificate doubles as the client's trusted CA.
 */
export const selfSignedCertificate = Effect.map(tempDir, (dir): TlsSettings & { readonly dir: string } => {
  const certFile = join(dir, "cert.pem")
  const keyFile = join(dir, "key.pem")
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", keyFile, "-out", certFile, "-days", "2", "-subj", "/CN=localhost",
    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"
  ], { stdio: "pipe" })
  return { dir, cert: readFileSync(certFile), key: readFileSync(keyFile) }
})
