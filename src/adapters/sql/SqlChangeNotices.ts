import type { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Context, Effect, Option } from "effect"
import type { Change } from "../../ports/ChangeFeed.js"

/**
 * Announces changes from inside the store's transaction, so they go out exactly when it commits (Postgres
 * NOTIFY is transactional) and never when it rolls back. Provided by the Postgres change feed; absent elsewhere.
 */
export class ChangeNotices extends Context.Tag("runs/sql/ChangeNotices")<ChangeNotices, {
  readonly within: (sql: SqlClient.SqlClient, changes: ReadonlyArray<Change>) => Effect.Effect<void, SqlError>
}>() {}

/** What the store calls in a transaction: the notices when present, else nothing. */
export const makeNotice = Effect.map(
  Effect.serviceOption(ChangeNotices),
  (notices) => (sql: SqlClient.SqlClient, changes: ReadonlyArray<Change>): Effect.Effect<void, SqlError> =>
    changes.length === 0 ? Effect.void : Option.match(notices, {
      onNone: () => Effect.void,
      onSome: (found) => found.within(sql, changes)
    })
)
