import { Context, Data, type Effect } from "effect"

export class DatabaseUnavailable extends Data.TaggedError("DatabaseUnavailable")<{
  readonly reason: string
}> {}

/** Whether the store's database answers, for `/readyz`. */
export class DatabaseHealth extends Context.Tag("runs/DatabaseHealth")<DatabaseHealth, {
  /** Succeeds when the database answers a trivial query within a short time; never dies. */
  readonly check: Effect.Effect<void, DatabaseUnavailable>
}>() {}
