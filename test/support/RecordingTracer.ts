import { Effect, type Context, type Exit, Option, Tracer } from "effect"
import { randomBytes } from "node:crypto"

/** A span as the recording tracer keeps it. */
export interface RecordedSpan extends Tracer.Span {
  readonly attributes: Map<string, unknown>
}

/**
 * An Effect tracer that keeps every span it makes, for a runtime to be given with `Effect.withTracer`; `ended`
 * waits for a span of a name to end (no polling).
 */
export const makeRecordingTracer = () => {
  const spans: Array<RecordedSpan> = []
  const listeners = new Set<() => void>()
  const changed = () => {
    for (const listener of Array.from(listeners)) listener()
  }

  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind) => {
      const span: RecordedSpan = {
        _tag: "Span",
        name,
        spanId: randomBytes(8).toString("hex"),
        traceId: Option.isSome(parent) ? parent.value.traceId : randomBytes(16).toString("hex"),
        parent,
        context: context as Context.Context<never>,
        status: { _tag: "Started", startTime },
        attributes: new Map(),
        links: [...links],
        sampled: Option.isSome(parent) ? parent.value.sampled : true,
        kind,
        end(endTime: bigint, exit: Exit.Exit<unknown, unknown>) {
          ;(this as { status: Tracer.SpanStatus }).status = { _tag: "Ended", startTime, endTime, exit }
          changed()
        },
        attribute(key: string, value: unknown) {
          this.attributes.set(key, value)
        },
        event() {},
        addLinks() {}
      }
      spans.push(span)
      return span
    },
    context: (f) => f()
  })

  const ended = (name: string): Effect.Effect<RecordedSpan> =>
    Effect.async<RecordedSpan>((resume) => {
      const check = () => {
        const span = spans.find((candidate) => candidate.name === name && candidate.status._tag === "Ended")
        if (span === undefined) return
        listeners.delete(check)
        resume(Effect.succeed(span))
      }
      listeners.add(check)
      check()
      return Effect.sync(() => listeners.delete(check))
    })

  return { spans, tracer, ended }
}
