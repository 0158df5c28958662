import { Data, Effect, Option } from "effect"
import { inputsDirectory } from "../../domain/CreateRun.js"
import { actionKeyText, runKeyText } from "../../domain/Ids.js"
import type { AbortRequest, EnqueueRequest } from "../../ports/Dispatcher.js"
import type { RunView } from "../../domain/Records.js"
import type { DispatchRequest } from "../../ports/Outbox.js"
import type { RunStore } from "../../ports/RunStore.js"

/** A request that can never be delivered: what it names is gone or incomplete. */
export class Undeliverable extends Data.TaggedError("Undeliverable")<{ readonly message: string }> {}

/**
 * What the executor is sent for an outbox request, from its run as stored now (`found`, read with the round's
 * others; SPEC 5: the inputs directory, the run output base, the run spec).
 */
export const enqueueRequest = (store: RunStore["Type"], found: Option.Option<RunView>, request: DispatchRequest) =>
  Effect.gen(function*() {
    if (Option.isNone(found)) {
      return yield* new Undeliverable({ message: `run ${runKeyText(request.action.run)} does not exist` })
    }
    const { root, run } = found.value
    const action = request.action.name === root.key.name
      ? root
      : Option.getOrUndefined(yield* store.getAction(request.action))
    const what = actionKeyText(request.action)
    if (action === undefined) return yield* new Undeliverable({ message: `action ${what} does not exist` })
    if (action.spec?.kind !== "task" || action.inputUri === undefined || action.runOutputBase === undefined) {
      return yield* new Undeliverable({ message: `action ${what} has no task spec, input URI or run output base` })
    }
    const enqueue: EnqueueRequest = {
      action: action.key,
      org: run.org,
      task: action.task,
      taskSpec: action.spec.payload,
      inputUri: inputsDirectory(action.inputUri),
      runOutputBase: action.runOutputBase,
      runSpec: run.runSpec
    }
    return enqueue
  })

export const abortRequest = (found: Option.Option<RunView>, request: DispatchRequest): AbortRequest => ({
  action: request.action,
  org: Option.match(found, { onNone: () => "", onSome: (view) => view.run.org }),
  reason: request.reason ?? ""
})
