import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { Config, ConfigError, Duration, Either, Option, Redacted } from "effect"
import type { AuthSettings } from "../../adapters/auth/BearerAuthenticator.js"
import type { JwtSettings } from "../../adapters/auth/JoseJwtVerifier.js"
import type { JwksSource } from "../../adapters/auth/JwksKeys.js"
import type { StaticToken } from "../../adapters/auth/StaticTokens.js"
import type { TlsSettings } from "../../adapters/http/Tls.js"
import { type Role, roles } from "../../domain/Access.js"
import * as V from "./values.js"

/** The keys of `runs.server.tls` and `runs.auth` (README, "Security"). */
export const securityKeys = [
  "runs.server.tls.certFile",
  "runs.server.tls.keyFile",
  "runs.auth.enabled",
  "runs.auth.tokens",
  "runs.auth.tokensFile",
  "runs.auth.jwt.issuer",
  "runs.auth.jwt.audience",
  "runs.auth.jwt.jwksUrl",
  "runs.auth.jwt.jwksFile",
  "runs.auth.jwt.subjectClaim",
  "runs.auth.jwt.rolesClaim",
  "runs.auth.jwt.userRoles",
  "runs.auth.jwt.executorRoles",
  "runs.auth.jwt.clockSkew",
  "runs.auth.jwt.jwksMaxAge",
  "runs.auth.jwt.jwksCooldown"
] as const

type Key = typeof securityKeys[number]

export const securityListKeys: ReadonlyArray<Key> = [
  "runs.auth.tokens",
  "runs.auth.jwt.audience",
  "runs.auth.jwt.userRoles",
  "runs.auth.jwt.executorRoles"
]

const at = <A>(key: Key, config: Config.Config<A>): Config.Config<A> =>
  key.split(".").reduceRight((inner, name) => Config.nested(inner, name), config)

const validated = <A, B>(config: Config.Config<A>, parse: (value: A) => Either.Either<B, string>) =>
  Config.mapOrFail(config, (value) => Either.mapLeft(parse(value), (message) => ConfigError.InvalidData([], message)))

const optional = <A>(key: Key, parse: V.Parse<A>): Config.Config<A | undefined> =>
  Config.map(Config.option(at(key, validated(Config.string(), parse))), Option.getOrUndefined)

const setting = <A>(key: Key, parse: V.Parse<A>, fallback: A): Config.Config<A> =>
  Config.withDefault(at(key, validated(Config.string(), parse)), fallback)

/** A YAML list, or one comma-separated string (from YAML or an environment variable). */
const list = (key: Key): Config.Config<ReadonlyArray<string>> =>
  Config.withDefault(
    at(
      key,
      Config.map(
        Config.orElse(Config.map(Config.string(), (text) => [text]), () => Config.array(Config.string())),
        (items) => items.flatMap((item) => item.split(",")).map((item) => item.trim()).filter((item) => item !== "")
      )
    ),
    []
  )

/** A problem found by looking at several keys (or a file's contents) together, named by one key. */
const problem = (key: Key, message: string) => ConfigError.InvalidData(key.split("."), message)

const readFile = (key: Key, cwd: string, file: string): Either.Either<Buffer, ConfigError.ConfigError> => {
  try {
    return Either.right(fs.readFileSync(path.resolve(cwd, file)))
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code
    const why = code === "ENOENT" ? "not found" : code === "EISDIR" ? "is a directory" : code === "EACCES" ? "permission denied" : "cannot be read"
    return Either.left(problem(key, `${file}: ${why}`))
  }
}

/** `runs.server.tls`: both files read and checked (PEM, key matches certificate), or neither set. */
export const tlsConfig = (cwd: string): Config.Config<TlsSettings | undefined> =>
  Config.mapOrFail(
    Config.all({
      certFile: optional("runs.server.tls.certFile", V.nonEmpty),
      keyFile: optional("runs.server.tls.keyFile", V.nonEmpty)
    }),
    ({ certFile, keyFile }) => {
      if (certFile === undefined && keyFile === undefined) return Either.right(undefined)
      if (certFile === undefined) return Either.left(problem("runs.server.tls.certFile", "required with runs.server.tls.keyFile"))
      if (keyFile === undefined) return Either.left(problem("runs.server.tls.keyFile", "required with runs.server.tls.certFile"))
      return Either.flatMap(
        Either.all([readFile("runs.server.tls.certFile", cwd, certFile), readFile("runs.server.tls.keyFile", cwd, keyFile)]),
        ([cert, key]) => {
          let certificate: crypto.X509Certificate
          try {
            certificate = new crypto.X509Certificate(cert)
          } catch {
            return Either.left(problem("runs.server.tls.certFile", `${certFile}: not a PEM certificate`))
          }
          let privateKey: crypto.KeyObject
          try {
            privateKey = crypto.createPrivateKey(key)
          } catch {
            return Either.left(problem("runs.server.tls.keyFile", `${keyFile}: not an unencrypted PEM private key`))
          }
          return certificate.checkPrivateKey(privateKey)
            ? Either.right({ cert, key })
            : Either.left(problem("runs.server.tls.keyFile", `${keyFile}: does not match the certificate in ${certFile}`))
        }
      )
    }
  )

/** Short tokens can be guessed; 16 characters of a random token are over 90 bits. */
const minTokenLength = 16

/** One `role:name:token` entry; the token is never quoted back in a message. */
const staticToken = (entry: string): Either.Either<StaticToken, string> => {
  const [role, name, ...rest] = entry.trim().split(":")
  const token = rest.join(":")
  if (role === undefined || name === undefined || rest.length === 0) return Either.left("expected role:name:token")
  if (!roles.includes(role as Role)) return Either.left(`expected the role user or executor, got ${JSON.stringify(role)}`)
  if (!/^[\w.@-]+$/.test(name)) return Either.left(`expected a name of letters, digits and . _ @ -, got ${JSON.stringify(name)}`)
  if (token.length < minTokenLength || /[\s,]/.test(token)) {
    return Either.left(`the token of ${name} must be at least ${minTokenLength} characters without spaces or commas`)
  }
  return Either.right({ role: role as Role, name, token: Redacted.make(token) })
}

const staticTokens = (
  cwd: string,
  inline: ReadonlyArray<string>,
  file: string | undefined
): Either.Either<ReadonlyArray<StaticToken>, ConfigError.ConfigError> =>
  Either.gen(function*() {
    const tokens: Array<StaticToken> = []
    for (const [index, entry] of inline.entries()) {
      const parsed = staticToken(entry)
      if (Either.isLeft(parsed)) return yield* Either.left(problem("runs.auth.tokens", `entry ${index + 1}: ${parsed.left}`))
      tokens.push(parsed.right)
    }
    if (file !== undefined) {
      const lines = (yield* readFile("runs.auth.tokensFile", cwd, file)).toString("utf8").split(/\r?\n/)
      for (const [index, line] of lines.entries()) {
        if (line.trim() === "" || line.trim().startsWith("#")) continue
        const parsed = staticToken(line)
        if (Either.isLeft(parsed)) return yield* Either.left(problem("runs.auth.tokensFile", `${file} line ${index + 1}: ${parsed.left}`))
        tokens.push(parsed.right)
      }
    }
    const names = new Set<string>()
    const values = new Set<string>()
    for (const token of tokens) {
      const key = file === undefined ? "runs.auth.tokens" : "runs.auth.tokensFile"
      if (names.has(token.name)) return yield* Either.left(problem(key, `the name ${token.name} is given twice`))
      if (values.has(Redacted.value(token.token))) return yield* Either.left(problem(key, `the token of ${token.name} is also another entry's token`))
      names.add(token.name)
      values.add(Redacted.value(token.token))
    }
    return tokens
  })

const jwksFile = (cwd: string, file: string): Either.Either<string, ConfigError.ConfigError> =>
  Either.flatMap(readFile("runs.auth.jwt.jwksFile", cwd, file), (bytes) => {
    try {
      const parsed: unknown = JSON.parse(bytes.toString("utf8"))
      const keys = typeof parsed === "object" && parsed !== null && "keys" in parsed ? parsed.keys : undefined
      if (Array.isArray(keys) && keys.length > 0) return Either.right(path.resolve(cwd, file))
    } catch {
      // answered below, as any file that is not a key set
    }
    return Either.left(problem("runs.auth.jwt.jwksFile", `${file}: expected a JSON Web Key Set ({"keys": [...]}) with at least one key`))
  })

const jwtKeys = Config.all({
  issuer: optional("runs.auth.jwt.issuer", V.nonEmpty),
  audiences: list("runs.auth.jwt.audience"),
  jwksUrl: optional("runs.auth.jwt.jwksUrl", V.httpUrl),
  jwksFile: optional("runs.auth.jwt.jwksFile", V.nonEmpty),
  subjectClaim: setting("runs.auth.jwt.subjectClaim", V.nonEmpty, "sub"),
  rolesClaim: setting("runs.auth.jwt.rolesClaim", V.nonEmpty, "roles"),
  userRoles: list("runs.auth.jwt.userRoles"),
  executorRoles: list("runs.auth.jwt.executorRoles"),
  clockSkew: setting("runs.auth.jwt.clockSkew", V.duration({ allowZero: true }), Duration.seconds(60)),
  keysMaxAge: setting("runs.auth.jwt.jwksMaxAge", V.duration({ allowZero: false }), Duration.minutes(10)),
  keysCooldown: setting("runs.auth.jwt.jwksCooldown", V.duration({ allowZero: true }), Duration.seconds(30))
})

const jwt = (cwd: string, keys: Config.Config.Success<typeof jwtKeys>): Either.Either<JwtSettings | undefined, ConfigError.ConfigError> => {
  const { audiences, issuer, jwksFile: file, jwksUrl: url, ...rest } = keys
  if (url === undefined && file === undefined) {
    return issuer === undefined && audiences.length === 0
      ? Either.right(undefined)
      : Either.left(problem("runs.auth.jwt.jwksUrl", "required (or runs.auth.jwt.jwksFile) to verify JWTs"))
  }
  if (url !== undefined && file !== undefined) {
    return Either.left(problem("runs.auth.jwt.jwksFile", "set either runs.auth.jwt.jwksUrl or runs.auth.jwt.jwksFile, not both"))
  }
  if (issuer === undefined) return Either.left(problem("runs.auth.jwt.issuer", "required to verify JWTs"))
  if (audiences.length === 0) return Either.left(problem("runs.auth.jwt.audience", "required to verify JWTs"))
  const source: Either.Either<JwksSource, ConfigError.ConfigError> = url !== undefined
    ? Either.right({ url })
    : Either.map(jwksFile(cwd, file!), (resolved) => ({ file: resolved }))
  return Either.map(
    source,
    (source) => ({ ...rest, issuer, audiences, keys: source })
  )
}

/**
 * `runs.auth`. Values are checked whether or not it is enabled; files are read, and the keys checked together,
 * only when it is.
 */
export const authConfig = (cwd: string): Config.Config<AuthSettings> =>
  Config.mapOrFail(
    Config.all({
      enabled: setting("runs.auth.enabled", V.boolean, false),
      tokens: list("runs.auth.tokens"),
      tokensFile: optional("runs.auth.tokensFile", V.nonEmpty),
      jwt: jwtKeys
    }),
    (raw): Either.Either<AuthSettings, ConfigError.ConfigError> => {
      if (!raw.enabled) {
        const { issuer, jwksFile, jwksUrl } = raw.jwt
        const set = raw.tokens.length > 0 || [raw.tokensFile, issuer, jwksUrl, jwksFile].some((v) => v !== undefined)
        return Either.right(set ? { enabled: false, ignored: true } : { enabled: false })
      }
      return Either.flatMap(
        Either.all({ tokens: staticTokens(cwd, raw.tokens, raw.tokensFile), jwt: jwt(cwd, raw.jwt) }),
        ({ jwt, tokens }) =>
          jwt === undefined && tokens.length === 0
            ? Either.left(problem(
              "runs.auth.enabled",
              "true, but no credential is configured: set runs.auth.jwt (issuer, audience, jwksUrl or jwksFile), runs.auth.tokens or runs.auth.tokensFile"
            ))
            : Either.right({ enabled: true, tokens, jwt })
      )
    }
  )
