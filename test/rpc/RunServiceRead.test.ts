import { create, toBinary } from "@bufbuild/protobuf"
import { Code, ConnectError, createClient } from "@connectrpc/connect"
import { createConnectTransport } from "@connectrpc/connect-node"
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { ActionPhase } from "#gen/flyteidl2/common/phase_pb.js"
import { LogContextSchema, TaskLogSchema } from "#gen/flyteidl2/core/execution_pb.js"
import { InputsSchema, OutputReferencesSchema, OutputsSchema } from "#gen/flyteidl2/task/common_pb.js"
import { ErrorInfoSchema } from "#gen/flyteidl2/workflow/run_definition_pb.js"
import {
  GetActionDetailsResponseSchema,
  GetRunDetailsResponseSchema,
  RunService
} from "#gen/flyteidl2/workflow/run_service_pb.js"
import { toPayload } from "../../src/adapters/connect/ProtoCodec.js"
import * as MemoryRunStore from "../../src/adapters/memory/MemoryRunStore.js"
import * as SqlRunStore from "../../src/adapters/sql/SqlRunStore.js"
import type { AttemptRecord } from "../../src/domain/Records.js"
import { RunsSettings } from "../../src/domain/RunsSettings.js"
import { BlobStore } from "../../src/ports/BlobStore.js"
import { RunStore } from "../../src/ports/RunStore.js"
import { backends, describeBackends } from "../support/backends.js"
import { at, childAction, runView } from "../support/Fixtures.js"
import { createNamed, integer } from "../support/RunRequests.js"
import { baseUrl, layerTestServer } from "../support/TestApp.js"

const client = Effect.map(baseUrl, (url) => createClient(RunService, createConnectTransport({ baseUrl: url, httpVersion: "1.1" })))
const call = <A>(f: () => Promise<A>) => Effect.promise(f)
const failure = (f: () => Promise<unknown>) =>
  Effect.promise(() => f().then(() => undefined, (error: unknown) => ConnectError.from(error)))

const runId = (name: string, org = "") => ({ org, project: "flytesnacks", domain: "development", name })

const attemptRecord = (n: number, phase: 4 | 5 | 6): AttemptRecord => ({
  attempt: n,
  phase,
  startTime: at(n * 100),
  endTime: phase === 4 ? undefined : at(n * 100 + 30),
  outputs: phase === 5 ? toPayload(OutputReferencesSchema, create(OutputReferencesSchema, { outputUri: "s3://bucket/out/1" })) : undefined,
  logInfo: [toPayload(TaskLogSchema, create(TaskLogSchema, { uri: `https://logs/${n}`, name: "pod" }))],
  logContext: toPayload(LogContextSchema, create(LogContextSchema, { primaryPodName: `pod-${n}` })),
  errorInfo: phase === 6 ? toPayload(ErrorInfoSchema, create(ErrorInfoSchema, { message: "boom", kind: 1 })) : undefined,
  cluster: "cluster-a",
  cacheStatus: 1,
  logsAvailable: true,
  phaseTransitions: [
    { phase: 1, startTime: at(n * 100), endTime: at(n * 100 + 1) },
    { phase: 4, startTime: at(n * 100 + 1), endTime: phase === 4 ? undefined : at(n * 100 + 30) }
  ],
  clusterEvents: [{ occurredAt: at(n * 100 + 2), message: `scheduled ${n}` }]
})

describeBackends("RunService reads, lists, aborts", backends({ memory: MemoryRunStore.layer, sql: SqlRunStore.layer }), (backend) => {
  const server = () => layerTestServer(backend.layer)

  it.effect("GetRunDetails shows the task spec, the stored run spec and QUEUED; unknown runs are NotFound", () =>
    Effect.gen(function*() {
      const runs = yield* client
      yield* call(() => runs.createRun(createNamed("details-run")))
      const { details } = yield* call(() => runs.getRunDetails({ runId: runId("details-run", "any-org") }))
      expect(details?.action?.status?.phase).toBe(ActionPhase.QUEUED)
      expect(details?.action?.id?.run?.org).toBe("")
      expect(details?.action?.spec.case).toBe("task")
      expect(details?.runSpec?.rawDataStorage?.rawDataPrefix).toMatch(/^file:\/\//)
      expect(details?.action?.attempts).toEqual([])
      const missing = yield* failure(() => runs.getRunDetails({ runId: runId("nope") }))
      expect(missing?.code).toBe(Code.NotFound)
      expect(missing?.rawMessage).toBe("run flytesnacks/development/nope not found")
    }).pipe(Effect.provide(server())))

  it.effect("GetActionDetails shows attempts, transitions, cluster events and the last error; log context and data URIs follow them", () =>
    Effect.gen(function*() {
      const runs = yield* client
      const store = yield* RunStore
      const { run } = yield* call(() => runs.createRun(createNamed("attempts-run")))
      const key = { run: { project: "flytesnacks", domain: "development", name: "attempts-run" }, name: "a0" }
      yield* store.putAttempts(key, [attemptRecord(1, 6), attemptRecord(2, 4)])
      const { details } = yield* call(() => runs.getActionDetails({ actionId: run!.action!.id! }))
      expect(details?.status?.attempts).toBe(2)
      expect(details?.attempts.map((attempt) => [attempt.attempt, attempt.phase])).toEqual([[1, 6], [2, 4]])
      const first = details!.attempts[0]!
      expect(first.errorInfo?.message).toBe("boom")
      expect(first.logInfo.map((log) => log.uri)).toEqual(["https://logs/1"])
      expect(first.phaseTransitions.map((transition) => transition.phase)).toEqual([1, 4])
      expect(first.clusterEvents.map((event) => event.message)).toEqual(["scheduled 1"])
      expect(first.logContext?.primaryPodName).toBe("pod-1")
      expect(first.cluster).toBe("cluster-a")

      const latest = yield* call(() => runs.getActionLogContext({ actionId: run!.action!.id!, attempt: 0 }))
      expect(latest.logContext?.primaryPodName).toBe("pod-2")
      const firstContext = yield* call(() => runs.getActionLogContext({ actionId: run!.action!.id!, attempt: 1 }))
      expect(firstContext.cluster).toBe("cluster-a")
      const noAttempt = yield* failure(() => runs.getActionLogContext({ actionId: run!.action!.id!, attempt: 7 }))
      expect(noAttempt?.code).toBe(Code.NotFound)
      const unknown = yield* failure(() => runs.getActionDetails({ actionId: { run: runId("attempts-run"), name: "zz" } }))
      expect(unknown?.code).toBe(Code.NotFound)
    }).pipe(Effect.provide(server())))

  it.effect("GetRunDetails and GetActionDetails answer binary and JSON clients with the same message", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      const [binary, json] = [true, false].map((useBinaryFormat) =>
        createClient(RunService, createConnectTransport({ baseUrl: url, httpVersion: "1.1", useBinaryFormat }))
      )
      const store = yield* RunStore
      const { run } = yield* call(() => binary!.createRun(createNamed("formats-run")))
      const key = { run: { project: "flytesnacks", domain: "development", name: "formats-run" }, name: "a0" }
      yield* store.putAttempts(key, [attemptRecord(1, 6), attemptRecord(2, 5)])
      const runDetails = yield* Effect.forEach([binary!, json!], (runs) =>
        call(() => runs.getRunDetails({ runId: runId("formats-run") })))
      expect(runDetails[0]!.details?.action?.attempts[1]?.outputs?.outputUri).toBe("s3://bucket/out/1")
      expect(runDetails[0]!.details?.action?.spec.case).toBe("task")
      expect(toBinary(GetRunDetailsResponseSchema, runDetails[0]!)).toEqual(toBinary(GetRunDetailsResponseSchema, runDetails[1]!))
      const actionDetails = yield* Effect.forEach([binary!, json!], (runs) =>
        call(() => runs.getActionDetails({ actionId: run!.action!.id! })))
      expect(actionDetails[0]!.details?.attempts[0]?.errorInfo?.message).toBe("boom")
      expect(toBinary(GetActionDetailsResponseSchema, actionDetails[0]!))
        .toEqual(toBinary(GetActionDetailsResponseSchema, actionDetails[1]!))
    }).pipe(Effect.provide(server())))

  it.effect("ListRuns filters by phase, sorts by created_at ascending and pages with limit 1 until the token is empty", () =>
    Effect.gen(function*() {
      const runs = yield* client
      for (const name of ["list-a", "list-b", "list-c"]) yield* call(() => runs.createRun(createNamed(name)))
      yield* call(() => runs.abortRun({ runId: runId("list-b") }))
      const names: Array<string> = []
      let token = ""
      for (let page = 0; page < 10; page++) {
        const response = yield* call(() =>
          runs.listRuns({
            scopeBy: { case: "projectId", value: { organization: "", name: "flytesnacks", domain: "development" } },
            request: {
              limit: 1,
              token,
              sortBy: { key: "created_at", direction: 1 },
              filters: [{ field: "phase", function: 7, values: ["1"] }]
            }
          })
        )
        names.push(...response.runs.map((run) => run.action!.id!.run!.name))
        token = response.token
        if (token === "") break
      }
      expect(names).toEqual(["list-a", "list-c"])
      const all = yield* call(() => runs.listRuns({ scopeBy: { case: "org", value: "" }, request: {} }))
      expect(all.runs.map((run) => run.action!.id!.run!.name)).toEqual(["list-c", "list-b", "list-a"])
      expect(all.token).toBe("")
    }).pipe(Effect.provide(server())))

  it.effect("ListRuns pages neither repeat nor skip rows while runs are created", () =>
    Effect.gen(function*() {
      const runs = yield* client
      for (let i = 0; i < 7; i++) yield* call(() => runs.createRun(createNamed(`page-${i}`)))
      const seen: Array<string> = []
      let token = ""
      for (let page = 0; page < 20; page++) {
        const response = yield* call(() =>
          runs.listRuns({
            scopeBy: { case: "projectId", value: { organization: "", name: "flytesnacks", domain: "development" } },
            request: { limit: 2, token }
          })
        )
        seen.push(...response.runs.map((run) => run.action!.id!.run!.name))
        yield* call(() => runs.createRun(createNamed(`late-${page}`)))
        token = response.token
        if (token === "") break
      }
      const original = Array.from({ length: 7 }, (_, i) => `page-${i}`).reverse()
      expect(seen.filter((name) => name.startsWith("page-"))).toEqual(original)
      expect(new Set(seen).size).toBe(seen.length)
    }).pipe(Effect.provide(server())))

  it.effect("ListRuns and ListActions answer InvalidArgument for unusable requests, Unimplemented for triggers", () =>
    Effect.gen(function*() {
      const runs = yield* client
      yield* call(() => runs.createRun(createNamed("bad-list")))
      const scope = { case: "projectId" as const, value: { organization: "", name: "flytesnacks", domain: "development" } }
      const cases = [
        { limit: 201 },
        { token: "not-a-token" },
        { sortBy: { key: "color", direction: 0 } },
        { filters: [{ field: "color", function: 0, values: ["x"] }] },
        { filters: [{ field: "phase", function: 0, values: ["abc"] }] },
        { filters: [{ field: "created_at", function: 3, values: ["yesterday"] }] },
        { filters: [{ field: "phase", function: 6, values: ["1"] }] }
      ]
      for (const request of cases) {
        const error = yield* failure(() => runs.listRuns({ scopeBy: scope, request }))
        expect(error?.code, JSON.stringify(request)).toBe(Code.InvalidArgument)
        const actions = yield* failure(() => runs.listActions({ runId: runId("bad-list"), request }))
        expect(actions?.code, JSON.stringify(request)).toBe(Code.InvalidArgument)
      }
      const trigger = yield* failure(() =>
        runs.listRuns({ scopeBy: { case: "triggerName", value: { org: "", project: "p", domain: "d", name: "n", taskName: "t" } } })
      )
      expect(trigger?.code).toBe(Code.Unimplemented)
      const unknownRun = yield* failure(() => runs.listActions({ runId: runId("no-such-run") }))
      expect(unknownRun?.code).toBe(Code.NotFound)
    }).pipe(Effect.provide(server())))

  it.effect("ListActions lists the root and children; AbortRun aborts the run and its non-terminal descendants", () =>
    Effect.gen(function*() {
      const runs = yield* client
      const store = yield* RunStore
      const { run } = yield* call(() => runs.createRun(createNamed("tree-run")))
      const key = { project: "flytesnacks", domain: "development", name: "tree-run" }
      const created = run!.action!.status!.startTime!
      const after = (seconds: number) => new Date(Number(created.seconds) * 1000 + seconds * 1000)
      yield* store.recordAction(childAction(key, "c1", { org: "", spec: undefined, createdAt: after(1), phase: 4 }))
      yield* store.recordAction(childAction(key, "c2", { org: "", spec: undefined, createdAt: after(2), phase: 5 }))
      yield* store.recordAction(childAction(key, "c1a", { org: "", spec: undefined, parent: "c1", createdAt: after(3), phase: 1 }))
      const listed = yield* call(() => runs.listActions({ runId: runId("tree-run"), request: { sortBy: { key: "created_at", direction: 1 } } }))
      expect(listed.actions.map((action) => action.id!.name)).toEqual(["a0", "c1", "c2", "c1a"])
      expect(listed.actions[3]?.metadata?.parent).toBe("c1")

      yield* call(() => runs.abortRun({ runId: runId("tree-run"), reason: "stop it" }))
      const details = yield* call(() => runs.getRunDetails({ runId: runId("tree-run") }))
      expect(details.details?.action?.status?.phase).toBe(ActionPhase.ABORTED)
      expect(details.details?.action?.result).toEqual({ case: "abortInfo", value: expect.objectContaining({ reason: "stop it" }) })
      expect(details.details?.action?.status?.endTime).toBeDefined()
      const phases = yield* call(() => runs.listActions({ runId: runId("tree-run"), request: { sortBy: { key: "created_at", direction: 1 } } }))
      expect(phases.actions.map((action) => action.status!.phase)).toEqual([7, 7, 5, 7])

      const again = yield* call(() => runs.abortRun({ runId: runId("tree-run") }))
      expect(again).toBeDefined()
      const stillReason = yield* call(() => runs.getRunDetails({ runId: runId("tree-run") }))
      expect(stillReason.details?.action?.result.value).toMatchObject({ reason: "stop it" })
      const missing = yield* failure(() => runs.abortRun({ runId: runId("no-such-run") }))
      expect(missing?.code).toBe(Code.NotFound)
    }).pipe(Effect.provide(server())))

  it.effect("AbortAction aborts one action with the default reason; unknown actions are NotFound", () =>
    Effect.gen(function*() {
      const runs = yield* client
      const store = yield* RunStore
      const { run } = yield* call(() => runs.createRun(createNamed("abort-action")))
      const key = { project: "flytesnacks", domain: "development", name: "abort-action" }
      const created = run!.action!.status!.startTime!
      yield* store.recordAction(childAction(key, "c1", { org: "", spec: undefined, createdAt: new Date(Number(created.seconds) * 1000 + 1000), phase: 4 }))
      yield* call(() => runs.abortAction({ actionId: { run: runId("abort-action"), name: "c1" }, reason: "" }))
      const child = yield* call(() => runs.getActionDetails({ actionId: { run: runId("abort-action"), name: "c1" } }))
      expect(child.details?.status?.phase).toBe(ActionPhase.ABORTED)
      expect(child.details?.result.value).toMatchObject({ reason: "User requested abort" })
      const root = yield* call(() => runs.getRunDetails({ runId: runId("abort-action") }))
      expect(root.details?.action?.status?.phase).toBe(ActionPhase.QUEUED)
      const missing = yield* failure(() => runs.abortAction({ actionId: { run: runId("abort-action"), name: "zz" }, reason: "" }))
      expect(missing?.code).toBe(Code.NotFound)
    }).pipe(Effect.provide(server())))

  it.effect("GetActionData returns the inputs and the outputs of the latest SUCCEEDED attempt; URIs show them once SUCCEEDED", () =>
    Effect.gen(function*() {
      const runs = yield* client
      const store = yield* RunStore
      const blobs = yield* BlobStore
      const { storagePrefix } = yield* RunsSettings
      const base = `${storagePrefix}/flytesnacks/development/done-run`
      const view = runView({
        key: { project: "flytesnacks", domain: "development", name: "done-run" },
        org: "",
        phase: ActionPhase.SUCCEEDED,
        task: undefined,
        root: { inputUri: `${base}/inputs/inputs.pb` }
      })
      yield* store.createRun({ view, task: undefined })
      yield* blobs.write(`${base}/inputs/inputs.pb`, toBinary(InputsSchema, create(InputsSchema, { literals: [{ name: "x", value: integer(1) }] })))
      const outputs = (n: number) => toBinary(OutputsSchema, create(OutputsSchema, { literals: [{ name: "o", value: integer(n) }] }))
      yield* blobs.write(`${base}/attempt-1/outputs.pb`, outputs(10))
      yield* blobs.write(`${base}/attempt-2/outputs.pb`, outputs(20))
      const succeeded = (n: number) => ({
        ...attemptRecord(n, 5),
        outputs: toPayload(OutputReferencesSchema, create(OutputReferencesSchema, { outputUri: `${base}/attempt-${n}` }))
      })
      yield* store.putAttempts(view.root.key, [succeeded(1), succeeded(2), attemptRecord(3, 6)])
      const actionId = { run: runId("done-run"), name: "a0" }
      const data = yield* call(() => runs.getActionData({ actionId }))
      expect(data.inputs?.literals.map((literal) => literal.name)).toEqual(["x"])
      expect(toBinary(OutputsSchema, data.outputs!)).toEqual(outputs(20))
      const uris = yield* call(() => runs.getActionDataURIs({ actionId }))
      expect(uris).toMatchObject({ inputsUri: `${base}/inputs/inputs.pb`, outputsUri: `${base}/attempt-2` })

      const { run } = yield* call(() => runs.createRun(createNamed("queued-run")))
      const queued = yield* call(() => runs.getActionDataURIs({ actionId: run!.action!.id! }))
      expect(queued.outputsUri).toBe("")
      const noAction = yield* failure(() => runs.getActionData({ actionId: { run: runId("nope"), name: "a0" } }))
      expect(noAction?.code).toBe(Code.NotFound)
    }).pipe(Effect.provide(server())))
})
