import { NodeRuntime } from "@effect/platform-node"
import { Cause, Effect, Layer, Option } from "effect"
import { appLayer } from "./AppLayer.js"
import { loadConfig } from "./Config.js"
import { layerLogger } from "./Logging.js"

const startupMessage = (cause: Cause.Cause<unknown>): string => {
  const failure = Option.getOrUndefined(Cause.failureOption(cause)) ?? Cause.squash(cause)
  const message = typeof failure === "object" && failure !== null && "message" in failure
    ? String(failure.message)
    : String(failure)
  return message.replace(/\s*\n\s*/g, " ")
}

const App = Layer.unwrapEffect(
  Effect.map(
    loadConfig({ argv: process.argv.slice(2), env: process.env, cwd: process.cwd() }),
    ({ config, warnings }) =>
      Layer.mergeAll(
        appLayer(config),
        Layer.effectDiscard(Effect.forEach(warnings, (warning) => Effect.logWarning(warning), { discard: true }))
      ).pipe(Layer.provide(layerLogger(config.logger)))
  )
)

Layer.launch(App).pipe(
  Effect.tapErrorCause((cause) =>
    Cause.isInterruptedOnly(cause)
      ? Effect.void
      : Effect.sync(() => process.stderr.write(`runs-service: ${startupMessage(cause)}\n`))
  ),
  Effect.onExit(() => Effect.sync(() => process.stderr.write("runs-service: stopped\n"))),
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true })
)
