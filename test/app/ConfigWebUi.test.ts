import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { loadConfig } from "../../src/app/Config.js"

const tempDirs: Array<string> = []
afterAll(() => tempDirs.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })))

const load = (yaml: string | undefined, env: Record<string, string> = {}) => {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "runs-config-ui-"))
  tempDirs.push(cwd)
  if (yaml === undefined) return loadConfig({ argv: [], env, cwd })
  fs.writeFileSync(path.join(cwd, "c.yaml"), yaml)
  return loadConfig({ argv: ["--config", "c.yaml"], env, cwd })
}

describe("loadConfig: runs.domains and runs.clusterEndpoint", () => {
  it.effect("defaults: development, staging, production; no cluster endpoint", () =>
    Effect.gen(function*() {
      const { config, warnings } = yield* load(undefined)
      expect(warnings).toEqual([])
      expect(config.domains).toEqual(["development", "staging", "production"])
      expect(config.clusterEndpoint).toBe("")
    }))

  it.effect("reads a YAML list, a comma-separated variable and a base URL without its trailing slash", () =>
    Effect.gen(function*() {
      const yaml = "runs:\n  domains: [dev, prod]\n  clusterEndpoint: https://flyte.example.com/\n"
      const fromFile = (yield* load(yaml)).config
      expect(fromFile.domains).toEqual(["dev", "prod"])
      expect(fromFile.clusterEndpoint).toBe("https://flyte.example.com")
      const fromEnv = (yield* load(yaml, { RUNS_DOMAINS: "a, b,c", RUNS_CLUSTERENDPOINT: "http://10.0.0.5:8090" })).config
      expect(fromEnv.domains).toEqual(["a", "b", "c"])
      expect(fromEnv.clusterEndpoint).toBe("http://10.0.0.5:8090")
    }))

  it.effect("an empty list keeps the defaults, as for corsOrigins", () =>
    Effect.gen(function*() {
      expect((yield* load("runs:\n  domains: []\n")).config.domains).toEqual(["development", "staging", "production"])
    }))

  it.effect("rejects a repeated domain and a cluster endpoint that is not an http(s) URL, naming the key", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [string, string]> = [
        ["runs:\n  domains: [dev, dev]\n", "runs.domains"],
        ["runs:\n  domains: \" , \"\n", "runs.domains"],
        ["runs:\n  clusterEndpoint: ftp://x\n", "runs.clusterEndpoint"]
      ]
      for (const [yaml, key] of cases) {
        const error = yield* Effect.flip(load(yaml))
        expect(error.message).toContain(key)
      }
    }))
})
