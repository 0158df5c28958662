// `make integration-test[-postgres]`: starts the service on a temporary SQLite database (or on local Postgres,
// creating `flyte_runs` if needed), runs the test client against it, stops the service, and exits with the
// client's status.
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, openSync, readFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import pg from "pg"
import { scriptNodeOptions } from "../bench/Processes.js"

const root = join(import.meta.dirname, "..")
const postgres = process.argv.includes("--postgres")
const work = mkdtempSync(join(tmpdir(), "runs-integration-"))
const logFile = join(work, "service.log")

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer()
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

const ensurePostgresDatabase = async () => {
  const client = new pg.Client({ host: "localhost", port: 5432, user: "postgres", password: "postgres", database: "postgres" })
  await client.connect()
  const found = await client.query("SELECT 1 FROM pg_database WHERE datname = 'flyte_runs'")
  if (found.rowCount === 0) await client.query("CREATE DATABASE flyte_runs")
  await client.end()
}

const waitForReady = async (url: string, service: ChildProcess) => {
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    if (service.exitCode !== null) throw new Error(`the service exited with code ${service.exitCode}`)
    const ready = await fetch(url).then((response) => response.status === 200, () => false)
    if (ready) return
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  throw new Error("the service did not become ready within 30 seconds")
}

const node = (args: ReadonlyArray<string>, options: Parameters<typeof spawn>[2]) =>
  spawn(process.execPath, ["--import", "tsx", ...args], { cwd: root, ...options })

if (postgres) await ensurePostgresDatabase()
const port = await freePort()
const log = openSync(logFile, "a")
// As `npm start` runs it: node with that script's options (the heap limit, tsx).
const config = postgres ? "config-postgres.yaml" : "config.yaml"
const serviceArgs = [...scriptNodeOptions("start"), "src/app/main.ts", "--config", config]
const service = spawn(process.execPath, serviceArgs, {
  cwd: root,
  env: {
    ...process.env,
    RUNS_SERVER_PORT: String(port),
    RUNS_STORAGEPREFIX: pathToFileURL(join(work, "data")).href,
    ...(postgres ? {} : { DATABASE_SQLITE_FILE: join(work, "runs.db") })
  },
  stdio: ["ignore", log, log]
})
const stopped = new Promise<number | null>((resolve) => service.once("exit", (code) => resolve(code)))

let status = 1
try {
  await waitForReady(`http://127.0.0.1:${port}/readyz`, service)
  const client = node(["src/app/client/main.ts", "--endpoint", `http://127.0.0.1:${port}`], { stdio: "inherit" })
  status = await new Promise<number>((resolve) => client.once("exit", (code) => resolve(code ?? 1)))
} catch (error) {
  process.stderr.write(`integration test: ${error instanceof Error ? error.message : String(error)}\n`)
} finally {
  service.kill("SIGTERM")
  const code = await stopped
  if (code !== 0 && status === 0) {
    process.stderr.write(`integration test: the service exited with code ${code} on SIGTERM\n`)
    status = 1
  }
  if (status !== 0) process.stderr.write(`--- service log (${logFile}) ---\n${readFileSync(logFile, "utf8")}`)
}
process.exit(status)
