import { Context, Effect, Option, Tracer } from "effect"

/*
 * W3C trace context (`traceparent`), the form a span travels in: between processes in a header, and from a
 * request to the work it leaves behind (an outbox row) in a column.
 */

const traceparentPattern = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/
const traceIdPattern = /^[0-9a-f]{32}$/
const spanIdPattern = /^[0-9a-f]{16}$/

/**
 * The span a `traceparent` names, for a span to continue its trace; undefined when there is none or it is
 * malformed (version `ff` and all-zero ids are invalid, as the spec says).
 */
export const spanOfTraceparent = (traceparent: string | null | undefined): Tracer.ExternalSpan | undefined => {
  const match = traceparentPattern.exec(traceparent?.trim().toLowerCase() ?? "")
  if (match === null) return undefined
  const [, version, traceId, spanId, flags] = match as unknown as [string, string, string, string, string]
  if (version === "ff" || /^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined
  return Tracer.externalSpan({ traceId, spanId, sampled: (parseInt(flags, 16) & 1) === 1 })
}

/**
 * `span` as a `traceparent`, with its sampled flag; undefined when it is not recorded anywhere. With the tracer
 * off, every span is Effect's no-op span, which says so (`DisablePropagation`); such a span stands for its
 * parent, as Effect's own propagation does.
 */
export const traceparentOf = (span: Tracer.AnySpan): string | undefined => {
  let current: Tracer.AnySpan | undefined = span
  while (current !== undefined && Context.get(current.context, Tracer.DisablePropagation)) {
    current = current._tag === "Span" ? Option.getOrUndefined(current.parent) : undefined
  }
  if (current === undefined || !traceIdPattern.test(current.traceId) || !spanIdPattern.test(current.spanId)) return undefined
  return `00-${current.traceId}-${current.spanId}-${current.sampled ? "01" : "00"}`
}

/** The current span as a `traceparent` (see `traceparentOf`); undefined outside any span. */
export const currentTraceparent: Effect.Effect<string | undefined> = Effect.map(
  Effect.serviceOption(Tracer.ParentSpan),
  (span) => (Option.isSome(span) ? traceparentOf(span.value) : undefined)
)
