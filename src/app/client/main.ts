import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect } from "effect"
import { runTestClient } from "./TestClient.js"

const usage = "usage: npm run client -- [--endpoint http://localhost:8090]\n" +
  "with runs.auth on, set RUNS_USER_TOKEN and RUNS_EXECUTOR_TOKEN; for a private CA, NODE_EXTRA_CA_CERTS=ca.pem"

const endpointFrom = (argv: ReadonlyArray<string>): string | undefined => {
  if (argv.length === 0) return "http://localhost:8090"
  if (argv[0] === "--endpoint" && argv.length === 2) return argv[1]
  if (argv.length === 1 && argv[0]!.startsWith("--endpoint=")) return argv[0]!.slice("--endpoint=".length)
  return undefined
}

const endpoint = endpointFrom(process.argv.slice(2))

const program = endpoint === undefined
  ? Effect.sync(() => {
    process.stderr.write(`${usage}\n`)
    process.exitCode = 2
  })
  : runTestClient(endpoint, (line) => process.stdout.write(`${line}\n`), {
    user: process.env["RUNS_USER_TOKEN"] || undefined,
    executor: process.env["RUNS_EXECUTOR_TOKEN"] || undefined
  }).pipe(
    Effect.catchTag("StepFailed", (failure) =>
      Effect.sync(() => {
        process.stdout.write(`✗ Test ${failure.step} failed: ${failure.message}\n`)
        process.exitCode = 1
      }))
  )

NodeRuntime.runMain(program, { disableErrorReporting: false, disablePrettyLogger: true })
