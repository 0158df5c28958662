import { type ChildProcess, spawn } from "node:child_process"
import { build } from "esbuild"
import { createWriteStream, readFileSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { join } from "node:path"

export const root = join(import.meta.dirname, "..")

export interface Child {
  readonly process: ChildProcess
  readonly pid: number
  readonly output: () => string
  readonly stop: () => Promise<void>
}

/** A port nothing listens on right now. */
export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

const launch = (args: ReadonlyArray<string>, cwd: string, log?: string): Child => {
  const child = spawn(process.execPath, args, { cwd, env: process.env, stdio: ["ignore", "pipe", "pipe"] })
  let output = ""
  const keep = (chunk: unknown) => {
    output = (output + String(chunk)).slice(-20_000)
  }
  child.stdout?.on("data", keep)
  child.stderr?.on("data", keep)
  if (log !== undefined) {
    const file = createWriteStream(log, { flags: "a" })
    child.stdout?.on("data", (chunk) => file.write(chunk))
    child.once("exit", () => file.end())
  }
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  return {
    process: child,
    pid: child.pid ?? 0,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000)
      await exited
      clearTimeout(timer)
    }
  }
}

/** Node options for the service only, from `BENCH_SERVICE_NODE_ARGS` (e.g. `--cpu-prof --cpu-prof-dir=prof`). */
const serviceNodeArgs = (process.env["BENCH_SERVICE_NODE_ARGS"] ?? "").split(/\s+/).filter((arg) => arg !== "")

/** A file the service's standard output is appended to, from `BENCH_SERVICE_LOG` (e.g. with `--trace-gc`). */
const serviceLog = process.env["BENCH_SERVICE_LOG"]

/**
 * The node options of an npm script of this project's package.json, one that runs `node <options> <file> ...`:
 * the words between `node` and the file it runs.
 */
export const scriptNodeOptions = (name: string): ReadonlyArray<string> => {
  const scripts: Record<string, string> = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).scripts
  const words = (scripts[name] ?? "").split(/\s+/)
  const file = words.findIndex((word) => /\.m?[jt]s$/.test(word))
  if (words[0] !== "node" || file < 0) {
    throw new Error(`npm script "${name}" is not "node <options> <file>": ${scripts[name]}`)
  }
  return words.slice(1, file)
}

/**
 * The built service as it runs in production (`npm run serve`: `node`, the script's options such as the heap
 * limit, then `dist/runs-service.mjs`), with the options of `BENCH_SERVICE_NODE_ARGS` after them.
 */
export const startService = (configFile: string, cwd: string) =>
  launch(
    [...scriptNodeOptions("serve"), ...serviceNodeArgs, join(root, "dist", "runs-service.mjs"), "--config", configFile],
    cwd,
    serviceLog
  )

/**
 * A TypeScript program of the bench compiled to one ES module in `dir`, as the service is (`npm run build`), so
 * that both run on plain `node` with no TypeScript loader (whose hooks thread would count in the program's RSS).
 */
export const buildProgram = async (file: string, dir: string): Promise<string> => {
  const outfile = join(dir, file.replace(/\.ts$/, ".mjs"))
  await build({
    entryPoints: [join(root, "bench", file)],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile,
    logLevel: "warning"
  })
  return outfile
}

/** A program built by `buildProgram`, in its own process, with node's `options`. */
export const startBuilt = (outfile: string, args: ReadonlyArray<string>, cwd: string, options: ReadonlyArray<string> = []) =>
  launch([...options, outfile, ...args], cwd)

/** Polls `url` every 5 ms until it answers 200; the milliseconds that took. Fails after `timeoutMs`. */
export const waitUntilReady = async (url: string, child: Child, timeoutMs = 60_000): Promise<number> => {
  const start = performance.now()
  for (;;) {
    if (child.process.exitCode !== null) throw new Error(`process exited before ready:\n${child.output()}`)
    const ok = await fetch(url).then((response) => response.status === 200, () => false)
    if (ok) return performance.now() - start
    if (performance.now() - start > timeoutMs) throw new Error(`not ready after ${timeoutMs} ms:\n${child.output()}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** Waits until the process has printed `text`. */
export const waitForOutput = async (child: Child, text: string, timeoutMs = 60_000): Promise<void> => {
  const start = performance.now()
  while (!child.output().includes(text)) {
    if (child.process.exitCode !== null) throw new Error(`process exited before printing "${text}":\n${child.output()}`)
    if (performance.now() - start > timeoutMs) throw new Error(`no "${text}" after ${timeoutMs} ms:\n${child.output()}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

const statusField = (pid: number, field: string): number | undefined => {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return match?.[1] === undefined ? undefined : Number(match[1]) / 1024
  } catch {
    return undefined
  }
}

/** The resident set of a process now, in MB (Linux). */
export const rssMb = (pid: number) => statusField(pid, "VmRSS")

/**
 * The peak resident set of a process over a stretch of time, in MB: the kernel's high-water mark, reset at the
 * start where the kernel allows it, and 50 ms samples otherwise.
 */
export const peakRss = (pid: number) => {
  let reset = false
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5")
    reset = true
  } catch {
    // Not allowed here: the samples alone.
  }
  let sampled = rssMb(pid) ?? 0
  const timer = setInterval(() => {
    sampled = Math.max(sampled, rssMb(pid) ?? 0)
  }, 50)
  return () => {
    clearInterval(timer)
    const mark = reset ? statusField(pid, "VmHWM") : undefined
    return Math.max(sampled, mark ?? 0)
  }
}

/** Busy and total CPU time of the whole machine so far, in clock ticks (Linux: the `cpu` line of /proc/stat). */
const machineCpu = (): { readonly busy: number; readonly total: number } | undefined => {
  try {
    const ticks = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number)
    const total = ticks.reduce((sum, tick) => sum + tick, 0)
    const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0)
    return { busy: total - idle, total }
  } catch {
    return undefined
  }
}

/**
 * Waits until the machine is idle (under 10% busy over a 500 ms window), at most `timeoutMs`: work a scenario
 * left behind (the outbox delivering the runs CreateRun wrote, Postgres vacuuming what was written) is done
 * before the next one is measured. Returns how long it waited.
 */
export const waitIdle = async (timeoutMs = 30_000): Promise<number> => {
  const start = performance.now()
  for (;;) {
    const before = machineCpu()
    await new Promise((resolve) => setTimeout(resolve, 500))
    const after = machineCpu()
    if (before === undefined || after === undefined) return performance.now() - start
    if (after.busy - before.busy < 0.1 * (after.total - before.total)) return performance.now() - start
    if (performance.now() - start > timeoutMs) return performance.now() - start
  }
}
