export interface IdentityOptions {
  /** `runs.trustForwardedIdentity`: a proxy in front has authenticated the caller. */
  readonly trust: boolean
  /** The header the proxy sets to the caller's subject. */
  readonly header: string
}

const jwtSubject = (token: string): string | undefined => {
  const payload = token.split(".")[1]
  if (payload === undefined) return undefined
  try {
    const claims: unknown = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"))
    return typeof claims === "object" && claims !== null && "sub" in claims && typeof claims.sub === "string" &&
        claims.sub !== ""
      ? claims.sub
      : undefined
  } catch {
    return undefined
  }
}

/**
 * The creator's subject (SPEC 2): the configured header, else the `sub` of an `Authorization: Bearer` JWT
 * (decoded, not verified: the proxy in front checked it). Nothing unless forwarded identity is trusted.
 */
export const forwardedSubject = (headers: Headers, options: IdentityOptions): string | undefined => {
  if (!options.trust) return undefined
  const direct = headers.get(options.header)?.trim()
  if (direct !== undefined && direct !== "") return direct
  const authorization = headers.get("authorization")
  const bearer = authorization?.match(/^Bearer\s+(\S+)$/i)?.[1]
  return bearer === undefined ? undefined : jwtSubject(bearer)
}
