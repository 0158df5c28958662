import { Cause, Context, FiberRef, FiberRefs, HashMap, List, Logger, Option, Tracer } from "effect"

const text = (value: unknown): string =>
  typeof value === "string" ? value
    : value instanceof Error ? value.message
    : typeof value === "object" && value !== null ? safeJson(value)
    : String(value)

const safeJson = (value: unknown): string => {
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

const fieldValue = (value: unknown): unknown =>
  value === null || typeof value === "string" || typeof value === "number" || typeof value === "boolean"
    ? value
    : text(value)

/** The span a line was logged in, when a tracer records it (a span of the no-op tracer has no trace to join). */
const spanOf = (context: FiberRefs.FiberRefs): Tracer.Span | undefined => {
  const services = FiberRefs.getOrDefault(context, FiberRef.currentContext)
  const span = Option.getOrUndefined(Context.getOption(services, Tracer.ParentSpan))
  return span !== undefined && span._tag === "Span" && span.sampled ? span : undefined
}

/**
 * One JSON object per line: `timestamp`, `level`, `message`, then `traceId` and `spanId` when the line was logged
 * in a recorded span, then the annotations (`requestId`, `procedure`, `code`, ... where there are some), `cause`
 * when one was logged, and `spans` (the names of the spans it came from) with `logger.show-source`.
 */
export const jsonLogger = (options: { readonly showSource: boolean }): Logger.Logger<unknown, string> =>
  Logger.make(({ annotations, cause, context, date, logLevel, message, spans }) => {
    const line: Record<string, unknown> = {
      timestamp: date.toISOString(),
      level: logLevel.label,
      message: Array.isArray(message) ? message.map((part) => text(part)).join(" ") : text(message)
    }
    const span = spanOf(context)
    if (span !== undefined) {
      line["traceId"] = span.traceId
      line["spanId"] = span.spanId
    }
    for (const [key, value] of HashMap.toEntries(annotations)) {
      if (!(key in line)) line[key] = fieldValue(value)
    }
    if (!Cause.isEmpty(cause)) line["cause"] = Cause.pretty(cause)
    if (options.showSource && List.isCons(spans)) line["spans"] = List.toArray(spans).map((span) => span.label)
    return safeJson(line)
  })
