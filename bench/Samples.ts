import { toBinary } from "@bufbuild/protobuf"
import { createClient } from "@connectrpc/connect"
import { createConnectTransport } from "@connectrpc/connect-node"
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { InternalRunService, RecordActionEventsResponseSchema } from "#gen/flyteidl2/workflow/internal_run_service_pb.js"
import {
  CreateRunResponseSchema,
  GetRunDetailsResponseSchema,
  ListRunsResponseSchema,
  RunService,
  WatchActionsResponseSchema,
  WatchRunDetailsResponseSchema
} from "#gen/flyteidl2/workflow/run_service_pb.js"
import { actionId, attemptEvents, createRunRequest, listRunsRequest, projects, runId } from "./Requests.js"
import * as Scenarios from "./Scenarios.js"

/**
 * The service's answers to the bench's requests, each written to `<work>/samples/<method>.bin` for the echo
 * server to answer with, so that it sends what the service sends (and the checks that they are what the
 * scenarios expect: the details run's ten attempts, a full page of runs). Returns the folder.
 */
export const captureSamples = async (
  baseUrl: string,
  options: { readonly work: string; readonly workers: number; readonly children: number }
) => {
  const { work, workers } = options
  const transport = createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true })
  const runs = createClient(RunService, transport)
  const internal = createClient(InternalRunService, transport)
  const dir = join(work, "samples")
  mkdirSync(dir)
  const created = await runs.createRun(createRunRequest(projects.create, "sample"))
  writeFileSync(join(dir, "createRun.bin"), toBinary(CreateRunResponseSchema, created))
  const details = await runs.getRunDetails({ runId: runId(projects.details, Scenarios.detailsRunName) })
  const attempts = details.details?.action?.attempts.length ?? 0
  if (attempts !== 10) throw new Error(`the GetRunDetails run has ${attempts} attempts, not 10`)
  writeFileSync(join(dir, "getRunDetails.bin"), toBinary(GetRunDetailsResponseSchema, details))
  const listed = await runs.listRuns(listRunsRequest)
  if (listed.runs.length !== 50) throw new Error(`ListRuns returned ${listed.runs.length} runs, not 50`)
  writeFileSync(join(dir, "listRuns.bin"), toBinary(ListRunsResponseSchema, listed))
  const events = Array.from({ length: Scenarios.actionsPerBatch }, (_, k) =>
    attemptEvents(actionId(projects.events, Scenarios.eventsRunName, `e${workers}-${k}`), 1, 5, 0)).flat()
  const recorded = await internal.recordActionEvents({ events })
  writeFileSync(join(dir, "recordActionEvents.bin"), toBinary(RecordActionEventsResponseSchema, recorded))
  // The watches' first messages, as the scenarios' runs show them: a new run, and a run with its children.
  await runs.createRun(createRunRequest(projects.watch, "sample-run"))
  const watched = await Scenarios.firstMessage((signal) =>
    runs.watchRunDetails({ runId: runId(projects.watch, "sample-run") }, { signal }))
  writeFileSync(join(dir, "watchRunDetails.bin"), toBinary(WatchRunDetailsResponseSchema, watched))
  await runs.createRun(createRunRequest(projects.watch, "sample-tree"))
  const children = Array.from({ length: options.children }, (_, i) => `child${i}`)
  await Scenarios.recordChildren(baseUrl, projects.watch, "sample-tree", children)
  const [tree, update] = await Scenarios.firstMessages(
    (signal) => runs.watchActions({ runId: runId(projects.watch, "sample-tree") }, { signal }),
    () => internal.updateActionStatus({ actionId: actionId(projects.watch, "sample-tree", "child0"), status: { phase: 4, attempts: 2 } })
  )
  writeFileSync(join(dir, "watchActions.bin"), toBinary(WatchActionsResponseSchema, tree))
  writeFileSync(join(dir, "watchActionsUpdate.bin"), toBinary(WatchActionsResponseSchema, update))
  return dir
}
