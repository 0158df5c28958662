/*
 * The outbox keeps the trace of the request that wrote a row (`traceparent`, W3C), for its delivery to continue
 * that trace. NULL when spans were not recorded, and for the rows written before.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE outbox ADD COLUMN traceparent TEXT`
})
