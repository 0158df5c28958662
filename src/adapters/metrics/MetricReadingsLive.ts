import { Effect, Layer } from "effect"
import { MetricReadings } from "../../ports/Metrics.js"

/** The readings registered by the layers built with it, run in the order they were registered. */
export const make = Effect.sync(() => {
  const readings = new Set<Effect.Effect<void>>()
  return MetricReadings.of({
    register: (read) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          // A new object per registration, so the same effect registered twice is read and removed twice.
          const entry = Effect.suspend(() => read)
          readings.add(entry)
          return entry
        }),
        (entry) => Effect.sync(() => readings.delete(entry))
      ),
    readAll: Effect.suspend(() => Effect.forEach(Array.from(readings), (read) => read, { discard: true }))
  })
})

export const layer: Layer.Layer<MetricReadings> = Layer.effect(MetricReadings, make)
