import type { SqlClient } from "@effect/sql"
import { Effect, type Layer } from "effect"
import { join } from "node:path"
import { RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import { runMigrations } from "../src/adapters/sql/SqlMigrations.js"
import { defaultCompressMinBytes } from "../src/app/config/settings.js"
import { buildProgram, type Child, freePort, root, scriptNodeOptions, startBuilt, waitForOutput } from "./Processes.js"
import type { ReferenceOptions } from "./ReferenceServer.js"
import { createRunRequest, projects } from "./Requests.js"
import { connections } from "./Scenarios.js"

/**
 * The framework-less reference (`ReferenceServer.ts`) on a fresh database of its own, whose schema the service's
 * migrations make (so that it writes the same rows into the same tables and indexes), in a process of its own
 * with the service's node options, as the echo runs.
 */
export const startReference = async (options: {
  readonly work: string
  /** A SQLite file, or the URL of an empty Postgres database. */
  readonly database: string
  readonly client: Layer.Layer<SqlClient.SqlClient, unknown>
  /** The service's captured answers (`createRun.bin`). */
  readonly samples: string
  /** Called with the process as soon as it starts, so that it is stopped at the end whatever happens. */
  readonly track: (child: Child) => void
}): Promise<{ readonly url: string; readonly child: Child }> => {
  await Effect.runPromise(runMigrations.pipe(Effect.provide(options.client), Effect.orDie))
  const port = await freePort()
  const settings: ReferenceOptions = {
    port,
    database: options.database,
    storage: join(options.work, "reference-data"),
    answerSample: join(options.samples, "createRun.bin"),
    compressMinBytes: defaultCompressMinBytes,
    nodeModulesOf: root
  }
  const program = await buildProgram("ReferenceServer.ts", options.work)
  const child = startBuilt(program, [JSON.stringify(settings)], options.work, scriptNodeOptions("serve"))
  options.track(child)
  await waitForOutput(child, "listening")
  const url = `http://127.0.0.1:${port}`
  // The service has answered CreateRuns before its first round (the captured sample among them); the reference's
  // first one takes half a second (protovalidate compiles the request's rules), which would fall in a short round.
  const { clients: [client], close } = connections(RunService, url, 1)
  await client!.createRun(createRunRequest(projects.create, "reference-warm-up")).finally(close)
  return { url, child }
}
