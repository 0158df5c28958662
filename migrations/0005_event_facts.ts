/*
 * The event log keeps, beside each event, the facts the attempt merge reads of it (`facts`, JSON text: see
 * `src/adapters/sql/SqlEventFacts.ts`), so that rebuilding an attempt reads them back instead of decoding every
 * stored `event_pb`. The rows stored before have NULL there; the service fills them at start-up, before it is
 * ready, finding them through the partial index `action_events_facts_missing_idx` (empty once they are filled,
 * and no event is stored without facts since, so every later start finds nothing at once).
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE action_events ADD COLUMN facts TEXT`
  yield* sql`CREATE INDEX action_events_facts_missing_idx ON action_events (id) WHERE facts IS NULL`
})
