import { Context, Data, type Effect } from "effect"
import type { ActionKey } from "../domain/Ids.js"
import type { Payload } from "../domain/Payload.js"
import type { TaskRef } from "../domain/Records.js"

/** The executor could not be reached or refused the request; the request is tried again later. */
export class DispatchFailed extends Data.TaggedError("DispatchFailed")<{ readonly message: string }> {}

/** What the executor is sent to run an action (SPEC 5: the inputs as a directory, the run's output base). */
export interface EnqueueRequest {
  readonly action: ActionKey
  /** The run's org. */
  readonly org: string
  readonly task: TaskRef | undefined
  readonly taskSpec: Payload
  /** The inputs file's directory, without `/inputs.pb`. */
  readonly inputUri: string
  readonly runOutputBase: string
  readonly runSpec: Payload
}

export interface AbortRequest {
  readonly action: ActionKey
  /** The run's org. */
  readonly org: string
  readonly reason: string
}

/** Where queued actions go to be executed, and aborts too (SPEC 9). */
export class Dispatcher extends Context.Tag("runs/Dispatcher")<Dispatcher, {
  /** Hands the action to the executor; an executor that already has it counts as success. */
  readonly enqueue: (request: EnqueueRequest) => Effect.Effect<void, DispatchFailed>
  /** Asks the executor to stop the action (it stops the descendants); an action it does not know counts as
   * success. */
  readonly abort: (request: AbortRequest) => Effect.Effect<void, DispatchFailed>
}>() {}
