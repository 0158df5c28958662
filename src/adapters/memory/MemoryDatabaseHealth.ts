import { Effect, Layer } from "effect"
import { DatabaseHealth } from "../../ports/DatabaseHealth.js"

/** Nothing to reach: always answers. */
export const layer = Layer.succeed(DatabaseHealth, DatabaseHealth.of({ check: Effect.void }))
