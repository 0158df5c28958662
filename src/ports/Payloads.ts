import { Context, type Effect } from "effect"
import type { InvalidArgument } from "../domain/Errors.js"
import type { Payload } from "../domain/Payload.js"
import type { TaskRef } from "../domain/Records.js"

/** What the run use cases need to know of a task spec. */
export interface TaskDescription {
  /** The template's task identifier. */
  readonly task: TaskRef
  readonly taskType: string
  readonly shortName: string | undefined
  readonly environmentName: string | undefined
}

/**
 * Reads and shapes the IDL payloads the domain carries (task specs, run specs, inputs, outputs) without
 * the domain knowing their encoding.
 */
export class Payloads extends Context.Tag("runs/Payloads")<Payloads, {
  /** A `TaskSpec`'s identity and names; `InvalidArgument` when it has no template or template id. */
  readonly describeTaskSpec: (spec: Payload) => Effect.Effect<TaskDescription, InvalidArgument>
  /** The run's `task.Inputs`: the given inputs plus each of the spec's default inputs that is missing and
   * has a default (SPEC 5). */
  readonly inputsWithDefaults: (inputs: Payload | undefined, taskSpec: Payload) => Effect.Effect<Payload, InvalidArgument>
  /** The run spec as stored: an empty `raw_data_storage.raw_data_prefix` becomes `storagePrefix`; with the
   * cluster it names, if any. */
  readonly effectiveRunSpec: (
    runSpec: Payload | undefined,
    storagePrefix: string
  ) => Effect.Effect<{ readonly spec: Payload; readonly cluster: string | undefined }, InvalidArgument>
  /** The output URI of an attempt's `OutputReferences`, if it has one. */
  readonly outputUri: (outputs: Payload) => string | undefined
}>() {}
