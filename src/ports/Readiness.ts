import { Context, Data, type Effect } from "effect"

export class NotReady extends Data.TaggedError("NotReady")<{
  readonly reason: string
}> {}

/** Whether the service can answer requests: its schema is migrated and its database answers. */
export class Readiness extends Context.Tag("runs/Readiness")<Readiness, {
  /** Cheap: succeeds once the schema is migrated (requests are refused with `Unavailable` before). */
  readonly migrated: Effect.Effect<void, NotReady>
  /** For `/readyz`: migrated and the database answers now. */
  readonly check: Effect.Effect<void, NotReady>
}>() {}
