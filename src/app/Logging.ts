import { Layer, List, Logger } from "effect"
import type { AppConfig } from "./AppConfig.js"
import { jsonLogger } from "./JsonLogger.js"

let buffered: Array<string> = []
let flushOnExit = false

const flush = () => {
  if (buffered.length === 0) return
  const text = buffered.join("")
  buffered = []
  process.stdout.write(text)
}

/**
 * Lines go to standard output in one write per turn of the event loop: one write per line would cost a system call
 * per line, and under load there are many (the `none` dispatcher logs one per run). Lines still buffered are
 * written when the process exits, whatever the way (a write to a file or pipe is synchronous on Linux).
 */
const toStdout = (logger: Logger.Logger<unknown, string>): Logger.Logger<unknown, void> =>
  Logger.make((options) => {
    if (!flushOnExit) {
      flushOnExit = true
      process.on("exit", flush)
    }
    if (buffered.length === 0) setImmediate(flush)
    buffered.push(`${logger.log(options)}\n`)
  })

/**
 * One logfmt line (`logger.format: text`) or JSON object (`json`, see `jsonLogger`) per entry at `logger.level`
 * and above. `logger.show-source` adds each line's spans (which RPC or use case it came from).
 */
export const layerLogger = (config: AppConfig["logger"]) =>
  Layer.mergeAll(
    Logger.replace(
      Logger.defaultLogger,
      toStdout(
        config.format === "json"
          ? jsonLogger({ showSource: config.showSource })
          : config.showSource
          ? Logger.logfmtLogger
          : Logger.mapInputOptions(Logger.logfmtLogger, (options) => ({ ...options, spans: List.empty() }))
      )
    ),
    Logger.minimumLogLevel(config.level)
  )
