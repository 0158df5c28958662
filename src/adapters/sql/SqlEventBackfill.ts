import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import { EventFactsReader } from "../../ports/EventFactsReader.js"
import { detailsText } from "./SqlEventFacts.js"

/** Rows read and written per statement: a few hundred kilobytes of events at most. */
const rowsPerBatch = 500

/**
 * Fills `action_events.facts` of the events stored before the column existed (migration 0005), reading each
 * one's `event_pb` with `EventFactsReader`, a batch per transaction, until none is left; returns how many it
 * filled. A fresh database, or one filled before, costs one index lookup. An event that cannot be read keeps
 * its key and times only (as it would merge with no payload), and is named in a warning. Several replicas may
 * run it at once: they write the same text.
 */
export const backfillEventFacts: Effect.Effect<number, SqlError, SqlClient.SqlClient | EventFactsReader> = Effect.gen(
  function*() {
    const sql = yield* SqlClient.SqlClient
    const reader = yield* EventFactsReader
    let filled = 0
    for (;;) {
      const rows = yield* sql<{ readonly id: number | string; readonly event_pb: Uint8Array }>`
        SELECT id, event_pb FROM action_events WHERE facts IS NULL ORDER BY id LIMIT ${rowsPerBatch}`
      if (rows.length === 0) break
      const texts = yield* Effect.forEach(rows, (row) =>
        reader.read({ binary: row.event_pb, json: "" }).pipe(
          Effect.map((facts) => detailsText(facts)),
          Effect.catchTag("EventUnreadable", (unreadable) =>
            Effect.as(
              Effect.logWarning(`action_events row ${row.id}: event_pb cannot be read (${unreadable.reason}); ` +
                "it merges with its key and times only"),
              "{}"
            ))
        ))
      const cases = sql.join(" ", false)(rows.map((row, i) => sql`WHEN ${row.id} THEN ${texts[i]!}`))
      yield* sql`UPDATE action_events SET facts = CASE id ${cases} END
        WHERE id IN ${sql.in(rows.map((row) => row.id))} AND facts IS NULL`
      filled += rows.length
    }
    if (filled > 0) yield* Effect.logInfo(`filled the merge facts of ${filled} events stored before migration 0005`)
    return filled
  }
).pipe(Effect.withSpan("SqlEventBackfill.run"))
