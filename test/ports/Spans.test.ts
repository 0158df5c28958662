import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { withSpanWhenTraced } from "../../src/ports/Spans.js"
import { makeRecordingTracer } from "../support/RecordingTracer.js"

describe("withSpanWhenTraced", () => {
  it.effect("records the span, with its attributes and the effect under it, when the tracer is on", () =>
    Effect.gen(function*() {
      const recording = makeRecordingTracer()
      const inner = Effect.map(Effect.currentSpan, (span) => span.name)
      const seen = yield* inner.pipe(
        withSpanWhenTraced("Store.write", { attributes: { uri: "file:///x" } }),
        Effect.withTracer(recording.tracer)
      )
      expect(seen).toBe("Store.write")
      expect(recording.spans.map((span) => span.name)).toEqual(["Store.write"])
      expect(recording.spans[0]!.attributes.get("uri")).toBe("file:///x")
      expect(recording.spans[0]!.status._tag).toBe("Ended")
    }))

  it.effect("runs the effect with no span of its own, failures included, when the tracer is off", () =>
    Effect.gen(function*() {
      const recording = makeRecordingTracer()
      const off = <A, E>(effect: Effect.Effect<A, E>) =>
        effect.pipe(withSpanWhenTraced("Store.write"), Effect.withTracer(recording.tracer), Effect.withTracerEnabled(false))
      expect(yield* off(Effect.succeed(42))).toBe(42)
      expect(yield* Effect.flip(off(Effect.fail("refused")))).toBe("refused")
      // Under a span that is recorded, the effect sees that span as its own when none is added.
      const parent = yield* Effect.map(Effect.currentSpan, (span) => span.name).pipe(
        withSpanWhenTraced("Store.write"),
        Effect.withTracerEnabled(false),
        Effect.withSpan("Runs.create"),
        Effect.withTracer(recording.tracer)
      )
      expect(parent).toBe("Runs.create")
      expect(recording.spans.map((span) => span.name)).toEqual(["Runs.create"])
    }))
})
