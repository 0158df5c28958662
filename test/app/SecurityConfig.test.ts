import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as util from "node:util"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Redacted } from "effect"
import { ConfigLoadError, loadConfig } from "../../src/app/Config.js"
import { selfSignedCertificate } from "../support/Auth.js"

const tempDirs: Array<string> = []
const tempDir = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runs-security-config-"))
  tempDirs.push(dir)
  return dir
}
afterAll(() => tempDirs.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })))

/** Loads `yaml` (with the given files beside it) from a fresh directory. */
const load = (yaml: string, env: Record<string, string> = {}, files: Record<string, string | Buffer> = {}) => {
  const cwd = tempDir()
  fs.writeFileSync(path.join(cwd, "c.yaml"), yaml)
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(cwd, name), content)
  return loadConfig({ argv: ["--config", "c.yaml"], env, cwd })
}

const failure = (yaml: string, env: Record<string, string> = {}, files: Record<string, string | Buffer> = {}) =>
  Effect.gen(function*() {
    const error = yield* Effect.flip(load(yaml, env, files))
    expect(error).toBeInstanceOf(ConfigLoadError)
    expect(error.message).not.toContain("\n")
    return error.message
  })

const jwks = JSON.stringify({ keys: [{ kty: "EC", crv: "P-256", x: "x", y: "y", kid: "k1" }] })
const executorSecret = "executor-secret-0123456789"

const jwtYaml = (extra: ReadonlyArray<string> = []) =>
  [
    "runs:",
    "  auth:",
    "    enabled: true",
    "    jwt:",
    "      issuer: https://idp.example",
    "      audience: runs-service",
    "      jwksUrl: https://idp.example/keys",
    ...extra
  ].join("\n")

describe("runs.auth and runs.server.tls", () => {
  it.effect("are off by default", () =>
    Effect.gen(function*() {
      const { config } = yield* loadConfig({ argv: [], env: {}, cwd: tempDir() })
      expect(config.auth).toEqual({ enabled: false })
      expect(config.server.tls).toBeUndefined()
    }))

  it.effect("reads JWT settings with their defaults, and static tokens from the YAML and a file", () =>
    Effect.gen(function*() {
      const { config, warnings } = yield* load(
        jwtYaml([
          "      rolesClaim: realm_access.roles",
          "      executorRoles: [runs-executor]",
          "      userRoles: runs-user, runs-admin",
          "    tokens: [\"user:ci:ci-secret-0123456789abc\"]",
          "    tokensFile: tokens.txt"
        ]),
        {},
        { "tokens.txt": `# executors\n\nexecutor:actions-service:${executorSecret}\n` }
      )
      expect(warnings).toEqual([])
      if (!config.auth.enabled) return expect.fail("expected authentication on")
      expect(config.auth.tokens.map((t) => [t.role, t.name, Redacted.value(t.token)])).toEqual([
        ["user", "ci", "ci-secret-0123456789abc"],
        ["executor", "actions-service", executorSecret]
      ])
      expect(util.inspect(config, { depth: 10 })).not.toContain(executorSecret)
      expect(JSON.stringify(config)).not.toContain(executorSecret)
      const jwt = config.auth.jwt!
      expect({ ...jwt, clockSkew: Duration.toMillis(jwt.clockSkew), keysMaxAge: Duration.toMillis(jwt.keysMaxAge), keysCooldown: Duration.toMillis(jwt.keysCooldown) }).toEqual({
        issuer: "https://idp.example",
        audiences: ["runs-service"],
        keys: { url: "https://idp.example/keys" },
        subjectClaim: "sub",
        rolesClaim: "realm_access.roles",
        userRoles: ["runs-user", "runs-admin"],
        executorRoles: ["runs-executor"],
        clockSkew: 60_000,
        keysMaxAge: 600_000,
        keysCooldown: 30_000
      })
    }))

  it.effect("takes every key from the environment, tokens comma-separated", () =>
    Effect.gen(function*() {
      const cwd = tempDir()
      fs.writeFileSync(path.join(cwd, "jwks.json"), jwks)
      const { config } = yield* loadConfig({
        argv: [],
        cwd,
        env: {
          RUNS_AUTH_ENABLED: "true",
          RUNS_AUTH_TOKENS: `executor:exec-1:${executorSecret}, user:ci:ci-secret-0123456789abc`,
          RUNS_AUTH_JWT_ISSUER: "https://idp.example",
          RUNS_AUTH_JWT_AUDIENCE: "a,b",
          RUNS_AUTH_JWT_JWKS_FILE: "jwks.json",
          RUNS_AUTH_JWT_SUBJECT_CLAIM: "email",
          RUNS_AUTH_JWT_JWKS_COOLDOWN: "0"
        }
      })
      if (!config.auth.enabled) return expect.fail("expected authentication on")
      expect(config.auth.tokens.map((t) => t.name)).toEqual(["exec-1", "ci"])
      expect(config.auth.jwt).toMatchObject({ audiences: ["a", "b"], keys: { file: path.join(cwd, "jwks.json") }, subjectClaim: "email" })
      expect(Duration.toMillis(config.auth.jwt!.keysCooldown)).toBe(0)
    }))

  it.effect("are left alone while runs.auth.enabled is false, and marked as ignored", () =>
    Effect.gen(function*() {
      const { config } = yield* load("runs:\n  auth:\n    tokensFile: missing.txt\n    jwt:\n      issuer: https://idp.example\n")
      expect(config.auth).toEqual({ enabled: false, ignored: true })
      const cleared = yield* load("runs:\n  auth:\n    enabled: false\n    jwt:\n      clockSkew: 1s\n")
      expect(cleared.config.auth).toEqual({ enabled: false })
    }))

  it.effect("refuses unusable settings with one line naming the key, never quoting a token", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [string, string, Record<string, string>?]> = [
        ["runs:\n  auth:\n    enabled: maybe\n", "runs.auth.enabled: expected true or false"],
        ["runs:\n  auth:\n    enabled: true\n", "runs.auth.enabled: true, but no credential is configured"],
        [jwtYaml(["      jwksFile: jwks.json"]), "runs.auth.jwt.jwksFile: set either runs.auth.jwt.jwksUrl or runs.auth.jwt.jwksFile, not both"],
        [jwtYaml().replace("      issuer: https://idp.example\n", ""), "runs.auth.jwt.issuer: required"],
        [jwtYaml().replace("      audience: runs-service\n", ""), "runs.auth.jwt.audience: required"],
        [jwtYaml().replace("      jwksUrl: https://idp.example/keys", ""), "runs.auth.jwt.jwksUrl: required (or runs.auth.jwt.jwksFile)"],
        [jwtYaml().replace("https://idp.example/keys", "ftp://idp/keys"), "runs.auth.jwt.jwksUrl: expected an http:// or https:// URL"],
        [jwtYaml().replace("jwksUrl: https://idp.example/keys", "jwksFile: absent.json"), "runs.auth.jwt.jwksFile: absent.json: not found"],
        [jwtYaml().replace("jwksUrl: https://idp.example/keys", "jwksFile: c.yaml"), "runs.auth.jwt.jwksFile: c.yaml: expected a JSON Web Key Set"],
        [jwtYaml(["      clockSkew: soon"]), "runs.auth.jwt.clockSkew: expected a duration"],
        [jwtYaml(["      jwksMaxAge: 0"]), "runs.auth.jwt.jwksMaxAge: expected a positive duration"],
        ["runs:\n  auth:\n    enabled: true\n    tokens: [\"executor:exec:short-secret\"]\n", "runs.auth.tokens: entry 1: the token of exec must be at least 16 characters"],
        ["runs:\n  auth:\n    enabled: true\n    tokens: [\"admin:exec:abcdefghijklmnopqrstuvwxyz\"]\n", "runs.auth.tokens: entry 1: expected the role user or executor, got \"admin\""],
        ["runs:\n  auth:\n    enabled: true\n    tokens: [\"abcdefghijklmnopqrstuvwxyz\"]\n", "runs.auth.tokens: entry 1: expected role:name:token"],
        ["runs:\n  auth:\n    enabled: true\n    tokensFile: absent.txt\n", "runs.auth.tokensFile: absent.txt: not found"],
        ["runs:\n  auth:\n    enabled: true\n    tokensFile: tokens.txt\n", "runs.auth.tokensFile: tokens.txt line 2: expected role:name:token", { "tokens.txt": "# ok\nwhat-is-this\n" }],
        [
          "runs:\n  auth:\n    enabled: true\n    tokensFile: tokens.txt\n",
          "runs.auth.tokensFile: the name e is given twice",
          { "tokens.txt": "executor:e:abcdefghijklmnopqrstuvwxyz\nuser:e:zyxwvutsrqponmlkjihgfedcba\n" }
        ],
        [
          "runs:\n  auth:\n    enabled: true\n    tokensFile: tokens.txt\n",
          "runs.auth.tokensFile: the token of u is also another entry's token",
          { "tokens.txt": "executor:e:abcdefghijklmnopqrstuvwxyz\nuser:u:abcdefghijklmnopqrstuvwxyz\n" }
        ]
      ]
      for (const [yaml, expected, files] of cases) {
        const message = yield* failure(yaml, {}, { "jwks.json": jwks, ...files })
        expect(message).toContain(expected)
        for (const secret of ["short-secret", "abcdefghijklmnopqrstuvwxyz", "zyxwvutsrqponmlkjihgfedcba"]) {
          expect(message).not.toContain(secret)
        }
      }
      const fromEnv = yield* failure("logger: { level: info }\n", { RUNS_AUTH_ENABLED: "true", RUNS_AUTH_TOKENS: "user:x:tiny" })
      expect(fromEnv).toBe("runs.auth.tokens: entry 1: the token of x must be at least 16 characters without spaces or commas (from RUNS_AUTH_TOKENS)")
    }))

  it.scoped("reads the TLS certificate and key, and refuses missing, mismatched or non-PEM files", () =>
    Effect.gen(function*() {
      const first = yield* selfSignedCertificate
      const second = yield* selfSignedCertificate
      const tlsYaml = (cert: string, key: string) => `runs:\n  server:\n    tls:\n      certFile: ${cert}\n      keyFile: ${key}\n`
      const files = { "cert.pem": first.cert, "key.pem": first.key, "other-key.pem": second.key }
      const { config } = yield* load(tlsYaml("cert.pem", "key.pem"), {}, files)
      expect(config.server.tls).toEqual({ cert: first.cert, key: first.key })
      const cases: ReadonlyArray<readonly [string, string]> = [
        ["runs:\n  server:\n    tls:\n      certFile: cert.pem\n", "runs.server.tls.keyFile: required with runs.server.tls.certFile"],
        ["runs:\n  server:\n    tls:\n      keyFile: key.pem\n", "runs.server.tls.certFile: required with runs.server.tls.keyFile"],
        [tlsYaml("absent.pem", "key.pem"), "runs.server.tls.certFile: absent.pem: not found"],
        [tlsYaml("key.pem", "key.pem"), "runs.server.tls.certFile: key.pem: not a PEM certificate"],
        [tlsYaml("cert.pem", "cert.pem"), "runs.server.tls.keyFile: cert.pem: not an unencrypted PEM private key"],
        [tlsYaml("cert.pem", "other-key.pem"), "runs.server.tls.keyFile: other-key.pem: does not match the certificate in cert.pem"]
      ]
      for (const [yaml, expected] of cases) {
        expect(yield* failure(yaml, {}, files)).toContain(expected)
      }
      const fromEnv = yield* failure("logger: { level: info }\n", { RUNS_SERVER_TLS_CERT_FILE: "cert.pem" }, files)
      expect(fromEnv).toBe("runs.server.tls.keyFile: required with runs.server.tls.certFile")
    }))
})
