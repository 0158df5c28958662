import { cors } from "@connectrpc/connect"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2"

type Request = IncomingMessage | Http2ServerRequest
type Response = ServerResponse | Http2ServerResponse

const allowedHeaders = [...cors.allowedHeaders, "Authorization", "X-Request-Id", "X-User-Agent"].join(", ")
const exposedHeaders = [...cors.exposedHeaders, "X-Request-Id"].join(", ")
const allowedMethods = [...cors.allowedMethods, "OPTIONS"].join(", ")

/**
 * CORS for the configured browser origins. Listed origins may send credentials (cookies, as the web UI does
 * off localhost); `*` allows any origin but without credentials, so no page on the web can make calls in its
 * visitor's name. Returns true when it answered the request itself (a preflight).
 */
export const makeCors = (origins: ReadonlyArray<string>) => {
  const any = origins.includes("*")
  const allowed = new Set(origins)
  return (req: Request, res: Response): boolean => {
    const origin = req.headers.origin
    if (origin === undefined || !(any || allowed.has(origin))) return false
    res.setHeader("Access-Control-Allow-Origin", origin)
    res.setHeader("Vary", "Origin")
    if (allowed.has(origin)) res.setHeader("Access-Control-Allow-Credentials", "true")
    res.setHeader("Access-Control-Expose-Headers", exposedHeaders)
    if (req.method !== "OPTIONS" || req.headers["access-control-request-method"] === undefined) return false
    res.setHeader("Access-Control-Allow-Methods", allowedMethods)
    res.setHeader("Access-Control-Allow-Headers", allowedHeaders)
    res.setHeader("Access-Control-Max-Age", "7200")
    res.writeHead(204)
    res.end()
    return true
  }
}
