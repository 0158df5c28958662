import { execFile } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { promisify } from "node:util"
import { describe, expect, it } from "vitest"

const root = join(import.meta.dirname, "..", "..")
const logging = join(root, "src", "app", "Logging.ts")

/** Runs `body` (TypeScript, with Effect, LogLevel and layerLogger in scope) in a process of its own; its exit. */
const run = async (body: string) => {
  // Inside the project, so that its imports resolve from node_modules.
  mkdirSync(join(root, "test-results"), { recursive: true })
  const dir = mkdtempSync(join(root, "test-results", "logging-"))
  try {
    const file = join(dir, "program.ts")
    writeFileSync(
      file,
      `import { Effect, LogLevel } from "effect"\nimport { layerLogger } from ${JSON.stringify(logging)}\n${body}\n`
    )
    return await promisify(execFile)(process.execPath, ["--import", "tsx", file], { cwd: root })
      .then(({ stdout }) => ({ code: 0, stdout }), (error: { code: number; stdout: string }) => error)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

describe("the service's log lines", () => {
  it("are all written, in order, one per line, even by a process that exits at once after logging", async () => {
    const { code, stdout } = await run(`
const logger = layerLogger({ level: LogLevel.Info, showSource: false, format: "json" })
Effect.runSync(Effect.forEach([1, 2, 3], (n) => Effect.logInfo("line " + n)).pipe(Effect.provide(logger)))
Effect.runSync(Effect.logDebug("below the level").pipe(Effect.provide(logger)))
process.exit(3)
`)
    expect(code).toBe(3)
    const lines = stdout.trim().split("\n").map((line) => JSON.parse(line) as { message: string; level: string })
    expect(lines.map((line) => [line.level, line.message])).toEqual([["INFO", "line 1"], ["INFO", "line 2"], ["INFO", "line 3"]])
  }, 30_000)
})
