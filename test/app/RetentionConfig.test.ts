import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { loadConfig } from "../../src/app/Config.js"

const load = (yaml: string | undefined, env: Record<string, string> = {}) =>
  Effect.acquireUseRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "runs-retention-config-"))),
    (cwd) => {
      if (yaml !== undefined) fs.writeFileSync(path.join(cwd, "c.yaml"), yaml)
      return loadConfig({ argv: yaml === undefined ? [] : ["--config", "c.yaml"], env, cwd })
    },
    (cwd) => Effect.sync(() => fs.rmSync(cwd, { recursive: true, force: true }))
  )

const millis = (duration: Duration.Duration | undefined) => (duration === undefined ? undefined : Duration.toMillis(duration))

describe("runs.retention", () => {
  it.effect("is off by default, checked hourly in batches of 20 once on", () =>
    Effect.gen(function*() {
      const { config } = yield* load(undefined)
      expect(config.retention.maxAge).toBeUndefined()
      expect(millis(config.retention.interval)).toBe(3600_000)
      expect(config.retention.batchSize).toBe(20)
    }))

  it.effect("takes the keys from the file and the environment; 0 turns it off", () =>
    Effect.gen(function*() {
      const { config, warnings } = yield* load("runs:\n  retention:\n    maxAge: 720h\n    interval: 10m\n    batchSize: 20\n")
      expect(warnings).toEqual([])
      expect(millis(config.retention.maxAge)).toBe(720 * 3600_000)
      expect(millis(config.retention.interval)).toBe(600_000)
      expect(config.retention.batchSize).toBe(20)
      const fromEnv = yield* load(undefined, { RUNS_RETENTION_MAXAGE: "30 days", RUNS_RETENTION_INTERVAL: "1h30m" })
      expect(millis(fromEnv.config.retention.maxAge)).toBe(30 * 24 * 3600_000)
      expect(millis(fromEnv.config.retention.interval)).toBe(90 * 60_000)
      const off = yield* load("runs:\n  retention:\n    maxAge: 0\n")
      expect(off.config.retention.maxAge).toBeUndefined()
    }))

  it.effect("refuses a value that is not a duration or count, naming the key", () =>
    Effect.gen(function*() {
      for (const [yaml, key] of [
        ["runs:\n  retention:\n    maxAge: soon\n", "runs.retention.maxAge"],
        ["runs:\n  retention:\n    interval: 0\n", "runs.retention.interval"],
        ["runs:\n  retention:\n    batchSize: 0\n", "runs.retention.batchSize"]
      ] as const) {
        const error = yield* Effect.flip(load(yaml))
        expect(error.message.startsWith(`${key}:`), error.message).toBe(true)
      }
    }))
})
