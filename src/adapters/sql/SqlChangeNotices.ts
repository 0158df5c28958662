import type { SqlClient, Statement } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Context, Effect, Option } from "effect"
import type { Change } from "../../ports/ChangeFeed.js"

/**
 * Announces changes from inside the store's transaction, so they go out exactly when it commits (Postgres
 * NOTIFY is transactional) and never when it rolls back. Provided by the Postgres change feed; absent elsewhere.
 */
export class ChangeNotices extends Context.Tag("runs/sql/ChangeNotices")<ChangeNotices, {
  readonly within: (sql: SqlClient.SqlClient, changes: ReadonlyArray<Change>) => Effect.Effect<void, SqlError>
  /** The notice of one change as an expression, for the select list of the statement that makes the change:
   * it is sent once for each row the statement returns, when that statement's transaction commits. */
  readonly expression: (sql: SqlClient.SqlClient, change: Change) => Statement.Fragment
}>() {}

/** What the store calls: the notices when present, else nothing. */
export const makeNotice = Effect.map(
  Effect.serviceOption(ChangeNotices),
  (notices) => ({
    /** Sends the notices of `changes` in the current transaction. */
    within: (sql: SqlClient.SqlClient, changes: ReadonlyArray<Change>): Effect.Effect<void, SqlError> =>
      changes.length === 0 ? Effect.void : Option.match(notices, {
        onNone: () => Effect.void,
        onSome: (found) => found.within(sql, changes)
      }),
    /** `, <the notice of change> AS notified` for a select list; empty when there are no notices. */
    column: (sql: SqlClient.SqlClient, change: Change): Statement.Fragment =>
      Option.match(notices, {
        onNone: () => sql.literal(""),
        onSome: (found) => sql`, ${found.expression(sql, change)} AS notified`
      })
  })
)
