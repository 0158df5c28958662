import { Effect, FiberRef, type Tracer } from "effect"

/**
 * `Effect.withSpan`, skipped when spans are not recorded (no exporter is configured, so the tracer is off). Even a
 * span that records nothing costs a call its own region (the span provided to the effect, ended on exit), which
 * on a path taken by every write is a real share of its work; with the tracer on this is `Effect.withSpan`.
 */
export const withSpanWhenTraced = (name: string, options?: Tracer.SpanOptions) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(
    FiberRef.get(FiberRef.currentTracerEnabled),
    (enabled) => (enabled ? Effect.withSpan(self, name, options) : self)
  )
