import { create } from "@bufbuild/protobuf"
import { createClient } from "@connectrpc/connect"
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node"
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { ActionPhase } from "#gen/flyteidl2/common/phase_pb.js"
import {
  InternalRunService,
  RecordActionEventStreamRequestSchema,
  UpdateActionStatusStreamRequestSchema
} from "#gen/flyteidl2/workflow/internal_run_service_pb.js"
import { RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import * as MemoryRunStore from "../../src/adapters/memory/MemoryRunStore.js"
import * as SqlRunStore from "../../src/adapters/sql/SqlRunStore.js"
import { backends, describeBackends } from "../support/backends.js"
import { runSteps, scriptedRun, type Step } from "../../src/app/client/ExecutorScript.js"
import { createNamed } from "../support/RunRequests.js"
import { baseUrl, layerTestServer } from "../support/TestApp.js"

const clients = Effect.map(baseUrl, (url) => {
  const http1 = createConnectTransport({ baseUrl: url, httpVersion: "1.1" })
  return {
    runs: createClient(RunService, http1),
    internal: createClient(InternalRunService, http1),
    streaming: createClient(InternalRunService, createGrpcTransport({ baseUrl: url }))
  }
})
const call = <A>(f: () => Promise<A>) => Effect.promise(f)
const run = { project: "flytesnacks", domain: "development", name: "exec-run" }
const runId = { org: "", ...run }
const actionId = (name: string) => ({ run: runId, name })

/** What the scripted run leaves behind: every action's phase and the failing-then-succeeding child's attempts. */
const outcome = Effect.gen(function*() {
  const { runs } = yield* clients
  const listed = yield* call(() => runs.listActions({ runId, request: { sortBy: { key: "created_at", direction: 1 } } }))
  const t1 = yield* call(() => runs.getActionDetails({ actionId: actionId("t1") }))
  return {
    phases: Object.fromEntries(listed.actions.map((action) => [action.id!.name, action.status!.phase])),
    t1Status: { phase: t1.details!.status!.phase, attempts: t1.details!.status!.attempts },
    t1Attempts: t1.details!.attempts
  }
})

const replay = (steps: ReadonlyArray<Step>) => Effect.flatMap(clients, ({ internal }) => call(() => runSteps(internal, steps)))

describeBackends("InternalRunService", backends({ memory: MemoryRunStore.layer, sql: SqlRunStore.layer }), (backend) => {
  const server = () => layerTestServer(backend.layer)

  it.effect("a scripted executor drives a run through the life of a real one", () =>
    Effect.gen(function*() {
      const { runs } = yield* clients
      yield* call(() => runs.createRun(createNamed("exec-run")))
      const { records, reports } = scriptedRun(run)
      const codes = yield* replay([...records, ...reports])
      expect(codes.every((code) => code === 0)).toBe(true)

      const result = yield* outcome
      expect(result.phases).toEqual({ a0: ActionPhase.SUCCEEDED, t1: ActionPhase.SUCCEEDED, t2: ActionPhase.SUCCEEDED, "trace-1": ActionPhase.SUCCEEDED })
      expect(result.t1Status).toEqual({ phase: ActionPhase.SUCCEEDED, attempts: 2 })
      const [first, second] = result.t1Attempts
      expect(first?.phase).toBe(ActionPhase.FAILED)
      expect(first?.errorInfo?.message).toBe("OOMKilled")
      expect(first?.phaseTransitions.map((transition) => transition.phase)).toEqual([1, 4, 6])
      expect(first?.clusterEvents.map((event) => event.message)).toEqual(["Pulling image", "Started", "Container killed"])
      expect(first?.logsAvailable).toBe(true)
      expect(second?.phase).toBe(ActionPhase.SUCCEEDED)
      expect(second?.outputs?.outputUri).toBe("file:///tmp/exec-run/t1/2")
      expect(second?.phaseTransitions.map((transition) => transition.phase)).toEqual([1, 4, 5])

      const details = yield* call(() => runs.getRunDetails({ runId }))
      expect(details.details?.action?.status?.phase).toBe(ActionPhase.SUCCEEDED)
      expect(details.details?.action?.status?.endTime).toBeDefined()
      const traceUris = yield* call(() => runs.getActionDataURIs({ actionId: actionId("trace-1") }))
      expect(traceUris.outputsUri).toBe("file:///tmp/exec-run/trace-1/outputs.pb")
      const context = yield* call(() => runs.getActionLogContext({ actionId: actionId("t1"), attempt: 1 }))
      expect(context.logContext?.primaryPodName).toBe("t1-1")

      const before = yield* outcome
      yield* replay([...records, ...reports])
      expect(yield* outcome).toEqual(before)
    }).pipe(Effect.provide(server())))

  it.effect("statuses and events sent in reverse order give the same details", () =>
    Effect.gen(function*() {
      const { runs } = yield* clients
      yield* call(() => runs.createRun(createNamed("exec-run")))
      const { records, reports } = scriptedRun(run)
      yield* replay(records)
      const reversed = [...reports].reverse().map((step) =>
        step.kind === "events" ? { ...step, events: [...step.events].reverse() } : step
      )
      yield* replay(reversed)
      const result = yield* outcome
      expect(result.phases).toEqual({ a0: ActionPhase.SUCCEEDED, t1: ActionPhase.SUCCEEDED, t2: ActionPhase.SUCCEEDED, "trace-1": ActionPhase.SUCCEEDED })
      expect(result.t1Attempts.map((attempt) => [attempt.attempt, attempt.phase, attempt.clusterEvents.length])).toEqual([[1, 6, 3], [2, 5, 1]])
    }).pipe(Effect.provide(server())))

  it.effect("events that arrive before their action give the same attempts once it is recorded", () =>
    Effect.gen(function*() {
      const { runs } = yield* clients
      yield* call(() => runs.createRun(createNamed("exec-run")))
      const { records, reports } = scriptedRun(run)
      yield* replay(reports.filter((step) => step.kind === "events"))
      yield* replay(records)
      const t1 = yield* call(() => runs.getActionDetails({ actionId: actionId("t1") }))
      expect(t1.details?.attempts.map((attempt) => attempt.phase)).toEqual([ActionPhase.FAILED, ActionPhase.SUCCEEDED])
      expect(t1.details?.status?.attempts).toBe(2)
      // Every fact the merge read came back from the event log, none from the request that carried it.
      const [first, second] = t1.details!.attempts
      expect(first?.errorInfo).toMatchObject({ message: "OOMKilled", kind: 2 })
      expect(first?.logInfo.map((log) => [log.name, log.uri])).toEqual([["pod", "https://logs/t1-1"]])
      expect(first?.logContext?.primaryPodName).toBe("t1-1")
      expect(first?.logsAvailable).toBe(true)
      expect(first?.cluster).toBe("cluster-a")
      expect(first?.clusterEvents.map((event) => event.message)).toEqual(["Pulling image", "Started", "Container killed"])
      expect(first?.phaseTransitions.map((transition) => transition.phase)).toEqual([1, 4, 6])
      expect(second?.outputs?.outputUri).toBe("file:///tmp/exec-run/t1/2")
      expect(second?.clusterEvents.map((event) => event.message)).toEqual(["Started again"])
    }).pipe(Effect.provide(server())))

  it.effect("answers failures in-band: unknown run and action are code 5, invalid events code 3 with the valid ones kept", () =>
    Effect.gen(function*() {
      const { runs, internal } = yield* clients
      yield* call(() => runs.createRun(createNamed("exec-run")))
      const unknownRun = yield* call(() =>
        internal.recordAction({ actionId: { run: { ...runId, name: "nope" }, name: "x" }, parent: "a0", spec: { case: "task", value: {} } })
      )
      expect(unknownRun.status).toMatchObject({ code: 5 })
      expect(unknownRun.status?.message).toContain("nope")
      const noSpec = yield* call(() => internal.recordAction({ actionId: actionId("x"), parent: "a0" }))
      expect(noSpec.status?.code).toBe(3)
      const unknownAction = yield* call(() => internal.updateActionStatus({ actionId: actionId("zz"), status: { phase: 4 } }))
      expect(unknownAction.status?.code).toBe(5)
      const phaseOnly = yield* call(() => internal.updateActionStatus({ actionId: actionId("a0"), status: { phase: 4, attempts: 0 } }))
      expect(phaseOnly.status?.code).toBe(0)
      const stale = yield* call(() => internal.updateActionStatus({ actionId: actionId("a0"), status: { phase: 1, attempts: 1 } }))
      expect(stale.status?.code).toBe(0)
      const events = yield* call(() =>
        internal.recordActionEvents({
          events: [
            { id: actionId("a0"), attempt: 1, phase: 4, version: 0, updatedTime: { seconds: 20n } },
            { attempt: 1, phase: 4, version: 1 },
            { id: actionId("a0"), attempt: 0, phase: 1, version: 0, updatedTime: { seconds: 10n } }
          ]
        })
      )
      expect(events.status?.code).toBe(3)
      expect(events.status?.message).toContain("events[1]")
      const details = yield* call(() => runs.getActionDetails({ actionId: actionId("a0") }))
      expect(details.details?.status?.phase).toBe(ActionPhase.RUNNING)
      expect(details.details?.attempts.map((attempt) => attempt.phaseTransitions.map((t) => t.phase))).toEqual([[1, 4]])
    }).pipe(Effect.provide(server())))

  it.effect("streams answer each request in order, echo the nonce, and go on after a bad item", () =>
    Effect.gen(function*() {
      const { runs, streaming } = yield* clients
      yield* call(() => runs.createRun(createNamed("exec-run")))
      const statuses = async function*() {
        yield create(UpdateActionStatusStreamRequestSchema, { request: { actionId: actionId("zz"), status: { phase: 4 } }, nonce: 7n })
        yield create(UpdateActionStatusStreamRequestSchema, { request: { actionId: actionId("a0"), status: { phase: 4, attempts: 1 } }, nonce: 8n })
      }
      const answers: Array<[bigint, number]> = []
      yield* call(async () => {
        for await (const answer of streaming.updateActionStatusStream(statuses())) {
          answers.push([answer.nonce, answer.response?.status?.code ?? -1])
        }
      })
      expect(answers).toEqual([[7n, 5], [8n, 0]])

      const events = async function*() {
        yield create(RecordActionEventStreamRequestSchema, { request: { event: { attempt: 1, phase: 4 } }, nonce: 1n })
        yield create(RecordActionEventStreamRequestSchema, { request: { event: { id: actionId("a0"), attempt: 1, phase: 4 } }, nonce: 2n })
      }
      const eventAnswers: Array<[bigint, number]> = []
      yield* call(async () => {
        for await (const answer of streaming.recordActionEventStream(events())) {
          eventAnswers.push([answer.nonce, answer.response?.status?.code ?? -1])
        }
      })
      expect(eventAnswers).toEqual([[1n, 3], [2n, 0]])

      const records = async function*() {
        yield { request: { actionId: actionId("s1"), parent: "a0", spec: { case: "task" as const, value: {} } } }
        yield { request: { actionId: actionId("s1"), parent: "a0", spec: { case: "task" as const, value: {} } } }
      }
      const recordCodes: Array<number> = []
      yield* call(async () => {
        for await (const answer of streaming.recordActionStream(records())) recordCodes.push(answer.response?.status?.code ?? -1)
      })
      expect(recordCodes).toEqual([0, 0])
      const listed = yield* call(() => runs.listActions({ runId }))
      expect(listed.actions.map((action) => action.id?.name).sort()).toEqual(["a0", "s1"])
    }).pipe(Effect.provide(server())))
})
