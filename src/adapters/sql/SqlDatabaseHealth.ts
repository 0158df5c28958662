import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Layer } from "effect"
import { DatabaseHealth, DatabaseUnavailable } from "../../ports/DatabaseHealth.js"

/** The library's message and the driver's (e.g. `connect ECONNREFUSED 127.0.0.1:5432`); never SQL text. */
const reason = (error: SqlError): string => {
  const cause = error.cause
  const detail = cause instanceof Error ? cause.message || ("code" in cause ? String(cause.code) : "") : ""
  return (detail === "" ? error.message : `${error.message}: ${detail}`).slice(0, 200)
}

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const check = sql`SELECT 1`.pipe(
    Effect.asVoid,
    Effect.mapError((error) => new DatabaseUnavailable({ reason: reason(error) })),
    // A query stuck on a dead connection is left to finish in the background; the answer comes on time.
    Effect.disconnect,
    Effect.timeoutFail({
      duration: "2 seconds",
      onTimeout: () => new DatabaseUnavailable({ reason: "the database did not answer within 2 seconds" })
    }),
    Effect.catchAllDefect(() => Effect.fail(new DatabaseUnavailable({ reason: "the database check failed" }))),
    Effect.withSpan("DatabaseHealth.check")
  )
  return DatabaseHealth.of({ check })
})

export const layer = Layer.effect(DatabaseHealth, make)
