import { Effect } from "effect"
import { dbTransactionDuration } from "../../ports/Metrics.js"

/**
 * `transaction` observed in `runs_db_transaction_duration_seconds` however it ends (commit, rollback or
 * interruption): a transaction that fails slowly holds its locks as long as one that commits.
 */
export const timedTransaction = <A, E, R>(transaction: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.suspend(() => {
    const startedAt = performance.now()
    return Effect.ensuring(
      transaction,
      Effect.sync(() => dbTransactionDuration.unsafeUpdate((performance.now() - startedAt) / 1000, []))
    )
  })
