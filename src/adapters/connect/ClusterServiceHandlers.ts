import type { HandlerContext, ServiceImpl } from "@connectrpc/connect"
import { Context, Effect } from "effect"
import { ClusterService } from "#gen/flyteidl2/cluster/service_pb.js"
import type { EffectHandlers } from "./EffectHandlers.js"
import type { IdentityOptions } from "./ForwardedIdentity.js"

/** Where clients reach this service's data plane (DataProxyService): `runs.clusterEndpoint`, if set. */
export class ClusterEndpoint extends Context.Tag("runs/ClusterEndpoint")<ClusterEndpoint, {
  /** A base URL such as `https://flyte.example.com`; undefined: the URL the caller reached the service at. */
  readonly configured: string | undefined
}>() {}

const first = (value: string | null | undefined) => value?.split(",")[0]?.trim() || undefined

/** `proto` and `host` of the first element of an RFC 7239 `Forwarded` header. */
const forwarded = (header: string | null) => {
  const element = first(header)
  const pairs = new Map(
    (element ?? "").split(";").map((pair) => {
      const at = pair.indexOf("=")
      return [pair.slice(0, at).trim().toLowerCase(), pair.slice(at + 1).trim().replace(/^"(.*)"$/, "$1")] as const
    })
  )
  return { proto: pairs.get("proto") || undefined, host: pairs.get("host") || undefined }
}

/**
 * The base URL of this service as the caller reached it: the scheme and host of the request, or, behind a trusted
 * proxy (`runs.trustForwardedIdentity`), those the proxy forwarded (`Forwarded`, else `X-Forwarded-Proto`,
 * `X-Forwarded-Host` and `X-Forwarded-Prefix`). A browser behind TLS termination must get its `https` origin back.
 */
export const requestBaseUrl = (context: HandlerContext, trustProxy: boolean): string => {
  const url = new URL(context.url)
  let proto = url.protocol.replace(/:$/, "")
  let host = url.host
  let prefix = ""
  if (trustProxy) {
    const headers = context.requestHeader
    const standard = forwarded(headers.get("forwarded"))
    proto = standard.proto ?? first(headers.get("x-forwarded-proto")) ?? proto
    host = standard.host ?? first(headers.get("x-forwarded-host")) ?? host
    prefix = (first(headers.get("x-forwarded-prefix")) ?? "").replace(/\/+$/, "")
    if (prefix !== "" && !prefix.startsWith("/")) prefix = `/${prefix}`
  }
  return `${proto}://${host}${prefix}`
}

/**
 * ClusterService: every resource and operation is served by this one service, so SelectCluster answers its own
 * base URL (clients treat an empty endpoint as a failure, so it is never empty).
 */
export const clusterServiceHandlers = (
  handlers: EffectHandlers<ClusterEndpoint>,
  identity: IdentityOptions
): Partial<ServiceImpl<typeof ClusterService>> => ({
  selectCluster: handlers.unary(ClusterService.method.selectCluster, (_request, context) =>
    Effect.map(ClusterEndpoint, (endpoint) => ({
      clusterEndpoint: endpoint.configured ?? requestBaseUrl(context, identity.trust)
    })))
})
