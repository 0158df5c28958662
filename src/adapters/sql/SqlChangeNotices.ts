import type { SqlClient, Statement } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Option } from "effect"
import type { Change } from "../../ports/ChangeFeed.js"
import { ChangeNotices } from "../../ports/ChangeNotices.js"

/** What the store calls: the notices (Postgres `pg_notify`) when a cross-process feed wants them, else nothing. */
export const makeNotice = Effect.map(
  Effect.serviceOption(ChangeNotices),
  (notices) => {
    const notify = (sql: SqlClient.SqlClient, channel: string, payload: string) => sql`pg_notify(${channel}, ${payload})`
    return {
      /** Sends the notices of `changes` in the current transaction. */
      within: (sql: SqlClient.SqlClient, changes: ReadonlyArray<Change>): Effect.Effect<void, SqlError> =>
        changes.length === 0 ? Effect.void : Option.match(notices, {
          onNone: () => Effect.void,
          onSome: ({ channel, payloads }) =>
            Effect.forEach(payloads(changes), (payload) => sql`SELECT ${notify(sql, channel, payload)}`, { discard: true })
        }),
      /** `, <the notice of change> AS notified` for the select list of the statement that makes the change: it
       * is sent once for each row the statement returns, when that statement's transaction commits; empty when
       * there are no notices. */
      column: (sql: SqlClient.SqlClient, change: Change): Statement.Fragment =>
        Option.match(notices, {
          onNone: () => sql.literal(""),
          onSome: ({ channel, payloads }) => sql`, ${notify(sql, channel, payloads([change])[0]!)} AS notified`
        }),
      /** `, <the notices of changes> AS notified` for the select list of a statement that returns one row: they
       * are sent, in order, when that statement's transaction commits; empty when there are no notices. */
      columnOfAll: (sql: SqlClient.SqlClient, changes: ReadonlyArray<Change>): Statement.Fragment =>
        Option.match(notices, {
          onNone: () => sql.literal(""),
          onSome: ({ channel, payloads }) =>
            changes.length === 0 ? sql.literal("") : sql`, (SELECT count(*) FROM (SELECT pg_notify(${channel}, p)
              FROM json_array_elements_text(${JSON.stringify(payloads(changes))}::json) AS p) AS sent) AS notified`
        })
    }
  }
)
