import { create } from "@bufbuild/protobuf"
import { Effect, Layer, Logger, type LogLevel } from "effect"
import { InputsSchema } from "#gen/flyteidl2/task/common_pb.js"
import { RunSpecSchema } from "#gen/flyteidl2/task/run_pb.js"
import { TaskSpecSchema } from "#gen/flyteidl2/task/task_definition_pb.js"
import * as ActionsDispatcher from "../../src/adapters/dispatch/ActionsDispatcher.js"
import * as OutboxWorker from "../../src/adapters/dispatch/OutboxWorker.js"
import { toPayload } from "../../src/adapters/connect/ProtoCodec.js"
import type { CreateRunRequest } from "../../src/domain/CreateRun.js"
import type { RunKey } from "../../src/domain/Ids.js"
import { Fingerprint } from "../../src/domain/Payload.js"
import type { RunView } from "../../src/domain/Records.js"
import { RunSource } from "../../src/domain/Phase.js"
import type { Dispatcher } from "../../src/ports/Dispatcher.js"
import { type DispatchRequest, Outbox } from "../../src/ports/Outbox.js"
import { Readiness } from "../../src/ports/Readiness.js"
import { runView } from "./Fixtures.js"
import { integer, project, taskSpec } from "./RunRequests.js"
import type { TestExecutor } from "./TestExecutor.js"

/** Short intervals, so tests run in real time quickly. */
export const fastWorker: OutboxWorker.OutboxWorkerOptions = {
  maxAge: "1 minute",
  pollInterval: "20 millis",
  backoff: { base: "20 millis", max: "100 millis" },
  deliveryTimeout: "2 seconds"
}

/** The worker with the `actions` dispatcher pointed at `executor`; needs Outbox and RunStore. */
export const layerActionsWorker = (executor: TestExecutor, options: Partial<OutboxWorker.OutboxWorkerOptions> = {}) =>
  layerWorker(ActionsDispatcher.layer({ url: executor.url, timeout: "2 seconds" }), options)

/** Readiness of a database that is always migrated. */
export const layerMigrated = Layer.succeed(Readiness, Readiness.of({ migrated: Effect.void, check: Effect.void }))

/** The worker with `dispatcher`; needs Outbox and RunStore, and is ready at once unless `readiness` says. */
export const layerWorker = (
  dispatcher: Layer.Layer<Dispatcher>,
  options: Partial<OutboxWorker.OutboxWorkerOptions> = {},
  readiness: Layer.Layer<Readiness> = layerMigrated
) => OutboxWorker.layer({ ...fastWorker, ...options }).pipe(Layer.provide(dispatcher), Layer.provide(readiness))

export interface LogLine {
  readonly level: LogLevel.LogLevel["label"]
  readonly message: string
}

/** A logger that keeps every line, for a layer to be provided with. */
export const capturingLogger = () => {
  const lines: Array<LogLine> = []
  const layer = Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ logLevel, message }) => {
      const parts = Array.isArray(message) ? message : [message]
      lines.push({ level: logLevel.label, message: parts.map((part) => String(part)).join(" ") })
    })
  )
  return { lines, layer }
}

/** CreateRun as the domain receives it: a named run in `project`, org `acme`, the test task spec. */
export const createRequest = (
  name: string,
  inputs: CreateRunRequest["inputs"] = {
    kind: "inline",
    inputs: toPayload(InputsSchema, create(InputsSchema, { literals: [{ name: "x", value: integer(1) }] }))
  }
): CreateRunRequest => ({
  id: { kind: "name", org: "acme", project: project.name, domain: project.domain, name },
  task: { kind: "spec", spec: toPayload(TaskSpecSchema, taskSpec()) },
  inputs,
  runSpec: toPayload(RunSpecSchema, create(RunSpecSchema, { cluster: "cluster-a", labels: { values: { team: "ml" } } })),
  source: RunSource.CLI,
  fingerprint: Fingerprint(`fp-${name}`),
  requestId: undefined,
  createdBy: undefined
})

/** A run as CreateRun stores it now, with payloads the executor can decode. */
export const dispatchableView = (): RunView =>
  runView({
    createdAt: new Date(),
    run: { runSpec: toPayload(RunSpecSchema, create(RunSpecSchema, { cluster: "cluster-a" })) },
    root: { spec: { kind: "task", payload: toPayload(TaskSpecSchema, taskSpec()) } }
  })

export const outboxOf = (run: RunKey) => Effect.flatMap(Outbox, (outbox) => outbox.list(run))

/** True once every request of every run is settled (delivered or failed). */
export const allSettled = (runs: ReadonlyArray<RunKey>) =>
  Effect.map(
    Effect.forEach(runs, (run) => outboxOf(run)),
    (lists) => lists.every((list) => list.length > 0 && list.every((request) => request.state !== "pending"))
  )

export const states = (requests: ReadonlyArray<DispatchRequest>) =>
  requests.map((request) => `${request.kind}:${request.state}`)
