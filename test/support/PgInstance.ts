import { execFileSync, spawnSync } from "node:child_process"
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { freePort } from "./ServiceProcess.js"

/**
 * A Postgres server of a test's own (its own data directory and port), which the test may stop and start as an
 * operator would. Built with the installed PostgreSQL's `initdb` and `pg_ctl`; the shared server is never touched.
 */
export interface PgInstance {
  readonly port: number
  /** `postgres://postgres@127.0.0.1:<port>/postgres`. */
  readonly url: string
  /** `pg_ctl stop -m fast`: open sessions are ended (57P01), then the server is down until `start`. */
  readonly stop: Effect.Effect<void>
  /** Starts it again on the same port and data; returns once it accepts connections. */
  readonly start: Effect.Effect<void>
  /** The server's log so far, for a failing test's message. */
  readonly log: () => string
}

/** The directory of `initdb` and `pg_ctl`: `pg_config --bindir`, else the newest /usr/lib/postgresql/N/bin. */
export const postgresBinDir = (): string | undefined => {
  const fromConfig = spawnSync("pg_config", ["--bindir"], { encoding: "utf8" })
  const configured = fromConfig.status === 0 ? fromConfig.stdout.trim() : ""
  if (configured !== "" && existsSync(join(configured, "initdb"))) return configured
  const versions = existsSync("/usr/lib/postgresql")
    ? readdirSync("/usr/lib/postgresql").filter((name) => /^\d+$/.test(name)).sort((a, b) => Number(b) - Number(a))
    : []
  return versions.map((version) => join("/usr/lib/postgresql", version, "bin")).find((dir) => existsSync(join(dir, "initdb")))
}

/**
 * Postgres refuses to run as root: as root, its programs run as the `postgres` account (through `runuser`), which
 * must exist then, and own the data directory. Otherwise they run as the current user.
 */
const runAs = (): { readonly prefix: ReadonlyArray<string>; readonly uid?: number; readonly gid?: number } => {
  if (process.getuid?.() !== 0) return { prefix: [] }
  const id = (flag: string) => spawnSync("id", [flag, "postgres"], { encoding: "utf8" })
  const uid = id("-u")
  const gid = id("-g")
  if (uid.status !== 0 || gid.status !== 0) {
    throw new Error("running as root, Postgres needs a non-root account to run as, and there is no `postgres` user")
  }
  return { prefix: ["runuser", "-u", "postgres", "--"], uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) }
}

/** A new Postgres server (trust authentication, user `postgres`), started; stopped and deleted with the scope. */
export const startPgInstance = Effect.gen(function*() {
  const bin = postgresBinDir()
  if (bin === undefined) return yield* Effect.dieMessage("initdb was not found (pg_config --bindir, /usr/lib/postgresql/*/bin)")
  const user = runAs()
  const port = yield* freePort
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "runs-pg-instance-"))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )
  if (user.uid !== undefined && user.gid !== undefined) chownSync(dir, user.uid, user.gid)
  const data = join(dir, "data")
  const logFile = join(dir, "server.log")
  const run = (program: string, args: ReadonlyArray<string>) =>
    Effect.try({
      try: () => {
        const [command, ...rest] = [...user.prefix, join(bin, program), ...args]
        execFileSync(command!, rest, { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" })
      },
      catch: (error) => new Error(`${program} failed: ${error instanceof Error ? error.message : String(error)}`)
    }).pipe(Effect.orDie)

  yield* run("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale", "--no-sync"])
  // Its socket goes in its own directory; fsync is off because no test outlives the machine (a fast stop
  // still checkpoints, so what committed is on disk when it starts again).
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50`
  const start = run("pg_ctl", ["-D", data, "-o", options, "-l", logFile, "-w", "-t", "30", "start"])
  const stop = run("pg_ctl", ["-D", data, "-m", "fast", "-w", "-t", "30", "stop"])
  yield* Effect.acquireRelease(start, () =>
    run("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]).pipe(Effect.catchAllDefect(() => Effect.void)))
  return {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop,
    start,
    log: () => (existsSync(logFile) ? readFileSync(logFile, "utf8") : "")
  } satisfies PgInstance
})
