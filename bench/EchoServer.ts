/**
 * The ceiling: a bare connect-node server (h2c, no validation, no database) that answers each
 * method the bench loads with a constant response, one captured from the real service. Usage:
 * `node --import tsx bench/EchoServer.ts <port> <samples dir>`.
 */
import { fromBinary } from "@bufbuild/protobuf"
import { type ConnectRouter } from "@connectrpc/connect"
import { connectNodeAdapter } from "@connectrpc/connect-node"
import { readFileSync } from "node:fs"
import { createServer } from "node:http2"
import { join } from "node:path"
import {
  InternalRunService,
  RecordActionEventsResponseSchema
} from "#gen/flyteidl2/workflow/internal_run_service_pb.js"
import { defaultCompressMinBytes } from "../src/app/config/settings.js"
import {
  CreateRunResponseSchema,
  GetRunDetailsResponseSchema,
  ListRunsResponseSchema,
  RunService
} from "#gen/flyteidl2/workflow/run_service_pb.js"

const [portText, samples] = process.argv.slice(2)
if (portText === undefined || samples === undefined) throw new Error("usage: EchoServer.ts <port> <samples dir>")

const sample = (method: string) => readFileSync(join(samples, `${method}.bin`))
const createRun = fromBinary(CreateRunResponseSchema, sample("createRun"))
const getRunDetails = fromBinary(GetRunDetailsResponseSchema, sample("getRunDetails"))
const listRuns = fromBinary(ListRunsResponseSchema, sample("listRuns"))
const recordActionEvents = fromBinary(RecordActionEventsResponseSchema, sample("recordActionEvents"))

const routes = (router: ConnectRouter) => {
  router.service(RunService, {
    createRun: () => createRun,
    getRunDetails: () => getRunDetails,
    listRuns: () => listRuns
  })
  router.service(InternalRunService, { recordActionEvents: () => recordActionEvents })
}

// The same response compression as the service's default, so both do the same transport work.
createServer({}, connectNodeAdapter({ routes, compressMinBytes: defaultCompressMinBytes })).listen(Number(portText), "127.0.0.1", () => {
  process.stdout.write("listening\n")
})
process.on("SIGTERM", () => process.exit(0))
