import { Effect, Layer } from "effect"
import { clip } from "../../domain/Errors.js"
import { actionKeyText, runKeyText } from "../../domain/Ids.js"
import { Dispatcher } from "../../ports/Dispatcher.js"

/**
 * `runs.dispatcher: none`: no executor is called. Each request is logged, so operators see what would have
 * been sent; runs wait for an executor to report through InternalRunService.
 */
export const make = Dispatcher.of({
  enqueue: (request) =>
    Effect.logInfo(`dispatch (none): enqueue ${actionKeyText(request.action)}`).pipe(
      Effect.annotateLogs({
        run: runKeyText(request.action.run),
        kind: "enqueue",
        inputUri: request.inputUri,
        runOutputBase: request.runOutputBase
      })
    ),
  abort: (request) =>
    Effect.logInfo(`dispatch (none): abort ${actionKeyText(request.action)}`).pipe(
      Effect.annotateLogs({ run: runKeyText(request.action.run), kind: "abort", reason: clip(request.reason, 200) })
    )
})

export const layer: Layer.Layer<Dispatcher> = Layer.effect(
  Dispatcher,
  Effect.as(Effect.logInfo("dispatcher: none (requests are logged and marked delivered)"), make)
)
