import type { Tracer } from "effect"
import { spanOfTraceparent } from "../../ports/TraceParent.js"

/** The caller's span from its W3C `traceparent` header, for the RPC's span to continue its trace. */
export const callerSpan = (headers: Headers): Tracer.ExternalSpan | undefined =>
  spanOfTraceparent(headers.get("traceparent"))
