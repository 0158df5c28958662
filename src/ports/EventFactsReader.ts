import { Context, Data, type Effect } from "effect"
import type { EventFacts } from "../domain/Events.js"
import type { Payload } from "../domain/Payload.js"

/** A stored event's binary form is not an `ActionEvent`. */
export class EventUnreadable extends Data.TaggedError("EventUnreadable")<{ readonly reason: string }> {}

/**
 * Reads the facts the attempt merge needs out of a stored event's binary form: for the events stored before
 * their facts were kept beside them (events received now carry their facts from the request).
 */
export class EventFactsReader extends Context.Tag("runs/EventFactsReader")<EventFactsReader, {
  /** The facts of a binary `ActionEvent` (attempt 0 reads as 1). */
  readonly read: (raw: Payload) => Effect.Effect<EventFacts, EventUnreadable>
}>() {}
