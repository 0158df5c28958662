import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Effect, Either, Exit, Layer, Option } from "effect"
import { getHeapStatistics } from "node:v8"
import { ConfigLoadError, loadConfig } from "./Config.js"
import { telemetrySettings } from "./TelemetrySettings.js"

const startupMessage = (cause: Cause.Cause<unknown>): string => {
  const failure = Option.getOrUndefined(Cause.failureOption(cause)) ?? Cause.squash(cause)
  const message = typeof failure === "object" && failure !== null && "message" in failure
    ? String(failure.message)
    : String(failure)
  return message.replace(/\s*\n\s*/g, " ")
}

const heapLimitMb = () => Math.round(getHeapStatistics().heap_size_limit / 1024 / 1024)

// The configuration is checked before the rest of the service is even loaded, so a bad value stops at once.
const main = Effect.gen(function*() {
  const { config, warnings } = yield* loadConfig({ argv: process.argv.slice(2), env: process.env, cwd: process.cwd() })
  const { appLayer } = yield* Effect.promise(() => import("./AppLayer.js"))
  const { layerLogger } = yield* Effect.promise(() => import("./Logging.js"))
  const telemetry = yield* Either.mapLeft(telemetrySettings(process.env), (message) => new ConfigLoadError({ message }))
  // The OpenTelemetry SDK is loaded only when an exporter is configured. Without one no tracer exports spans, so
  // they would only cost time (each Effect.fn call captures a stack trace): the tracer is off.
  const telemetryLayer = telemetry.traces === undefined && telemetry.metrics === undefined
    ? Layer.setTracerEnabled(false)
    : (yield* Effect.promise(() => import("./Telemetry.js"))).layerTelemetry(telemetry, process.env)
  const app = Layer.mergeAll(
    appLayer(config),
    Layer.effectDiscard(Effect.forEach(warnings, (warning) => Effect.logWarning(warning), { discard: true })),
    // The heap limit comes from node's command line: npm start and npm run serve set it (README, "Heap limit").
    Layer.effectDiscard(Effect.logInfo(`node ${process.version}, heap limit ${heapLimitMb()} MB`))
  ).pipe(Layer.provide(layerLogger(config.logger)), Layer.provide(telemetryLayer))
  return yield* Layer.launch(app)
})

main.pipe(
  Effect.tapErrorCause((cause) =>
    Cause.isInterruptedOnly(cause)
      ? Effect.void
      : Effect.sync(() => process.stderr.write(`runs-service: ${startupMessage(cause)}\n`))
  ),
  Effect.onExit((exit) =>
    Exit.isInterrupted(exit) ? Effect.sync(() => process.stderr.write("runs-service: stopped\n")) : Effect.void
  ),
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true })
)
