import { type ChildProcess, spawn } from "node:child_process"
import { createServer } from "node:net"
import { createRequire } from "node:module"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { type Duration, Effect, Schedule } from "effect"
import { scriptNodeOptions } from "../../bench/Processes.js"

const root = join(import.meta.dirname, "..", "..")
const tsxLoader = pathToFileURL(createRequire(join(root, "package.json")).resolve("tsx")).href

export interface ServiceProcess {
  readonly child: ChildProcess
  readonly output: () => string
  readonly exited: Promise<number | null>
}

/** A port nothing listens on right now. */
export const freePort = Effect.async<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** The node options of `npm start`, with tsx resolved from the project (the service runs in other folders). */
const startOptions = scriptNodeOptions("start").map((option) => option === "tsx" ? tsxLoader : option)

/** Starts the service as `npm start` does (`node <its options> src/app/main.ts`); killed with the scope. */
export const startService = (options: {
  readonly args?: ReadonlyArray<string>
  readonly env?: Record<string, string>
  readonly cwd: string
}) =>
  Effect.acquireRelease(
    Effect.sync((): ServiceProcess => {
      const child = spawn(
        process.execPath,
        [...startOptions, join(root, "src", "app", "main.ts"), ...(options.args ?? [])],
        { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ["ignore", "pipe", "pipe"] }
      )
      let output = ""
      child.stdout?.on("data", (chunk) => (output += String(chunk)))
      child.stderr?.on("data", (chunk) => (output += String(chunk)))
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
      return { child, output: () => output, exited }
    }),
    (service) =>
      Effect.promise(() => {
        if (service.child.exitCode === null) service.child.kill("SIGKILL")
        return service.exited
      })
  )

/**
 * Polls `path` until it answers `status` (25 s at most, unless told otherwise: a process started under tsx on a
 * loaded 2-core machine can take 10 s to listen).
 */
export const waitForStatus = (url: string, status: number, within: Duration.DurationInput = "25 seconds") =>
  Effect.tryPromise(() => fetch(url)).pipe(
    Effect.filterOrFail((response) => response.status === status),
    Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo(within)))
  )
