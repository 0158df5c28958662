import { Tracer } from "effect"

const traceparentPattern = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/**
 * The caller's span from its W3C `traceparent` header, for the RPC's span to continue its trace; undefined when
 * there is none or it is malformed (version `ff` and all-zero ids are invalid, as the spec says).
 */
export const callerSpan = (headers: Headers): Tracer.ExternalSpan | undefined => {
  const match = traceparentPattern.exec(headers.get("traceparent")?.trim().toLowerCase() ?? "")
  if (match === null) return undefined
  const [, version, traceId, spanId, flags] = match as unknown as [string, string, string, string, string]
  if (version === "ff" || /^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined
  return Tracer.externalSpan({ traceId, spanId, sampled: (parseInt(flags, 16) & 1) === 1 })
}
