import { Effect, Layer } from "effect"
import { Authenticator, Unauthenticated } from "../../ports/Authenticator.js"
import { makeJwtVerifier, type JwtSettings } from "./JoseJwtVerifier.js"
import { describeSource } from "./JwksKeys.js"
import { makeStaticTokens, type StaticToken } from "./StaticTokens.js"

/** `runs.auth`: off, or bearer tokens that are static machine tokens or JWTs from an OIDC provider. */
export type AuthSettings =
  /** `ignored`: other `runs.auth` keys are set, which an operator may believe are in force. */
  | { readonly enabled: false; readonly ignored?: boolean }
  | { readonly enabled: true; readonly tokens: ReadonlyArray<StaticToken>; readonly jwt: JwtSettings | undefined }

/** Authentication off: every call is served, and nobody is a verified principal. */
export const layerOff: Layer.Layer<Authenticator> = Layer.succeed(Authenticator, {
  enabled: false,
  authenticate: () => Effect.fail(new Unauthenticated({ reason: "authentication is off" }))
})

const describe = (settings: Extract<AuthSettings, { enabled: true }>) =>
  [
    ...(settings.jwt === undefined
      ? []
      : [`JWTs from ${settings.jwt.issuer} for ${settings.jwt.audiences.join(", ")}, keys from ${describeSource(settings.jwt.keys)}`]),
    ...(settings.tokens.length === 0 ? [] : [`${settings.tokens.length} static token(s)`])
  ].join("; ")

/** Static tokens first (a hash lookup), then, when configured, JWT verification. */
export const layer = (settings: AuthSettings): Layer.Layer<Authenticator> =>
  settings.enabled === false
    ? Layer.provide(
      layerOff,
      Layer.effectDiscard(
        settings.ignored === true
          ? Effect.logWarning("auth: off (every caller is served): runs.auth settings are ignored while runs.auth.enabled is false")
          : Effect.logInfo("auth: off (every caller is served)")
      )
    )
    : Layer.effect(
      Authenticator,
      Effect.gen(function*() {
        const staticToken = makeStaticTokens(settings.tokens)
        const jwt = settings.jwt === undefined ? undefined : yield* makeJwtVerifier(settings.jwt)
        yield* Effect.logInfo(`auth: bearer tokens required (${describe(settings)})`)
        return {
          enabled: true,
          authenticate: (token: string) => {
            const principal = staticToken(token)
            if (principal !== undefined) return Effect.succeed(principal)
            return jwt === undefined
              ? Effect.fail(new Unauthenticated({ reason: "not a known static token" }))
              : jwt(token)
          }
        }
      })
    )
