import { Layer, List, Logger } from "effect"
import type { AppConfig } from "./AppConfig.js"
import { jsonLogger } from "./JsonLogger.js"

/**
 * One logfmt line (`logger.format: text`) or JSON object (`json`, see `jsonLogger`) per entry at `logger.level`
 * and above. `logger.show-source` adds each line's spans (which RPC or use case it came from).
 */
export const layerLogger = (config: AppConfig["logger"]) =>
  Layer.mergeAll(
    Logger.replace(
      Logger.defaultLogger,
      Logger.withConsoleLog(
        config.format === "json"
          ? jsonLogger({ showSource: config.showSource })
          : config.showSource
          ? Logger.logfmtLogger
          : Logger.mapInputOptions(Logger.logfmtLogger, (options) => ({ ...options, spans: List.empty() }))
      )
    ),
    Logger.minimumLogLevel(config.level)
  )
