import { Code } from "@connectrpc/connect"
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { SelectClusterRequest_Operation } from "#gen/flyteidl2/cluster/payload_pb.js"
import { ClusterService } from "#gen/flyteidl2/cluster/service_pb.js"
import { DataProxyService } from "#gen/flyteidl2/dataproxy/dataproxy_service_pb.js"
import { RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import * as MemoryRunStore from "../../src/adapters/memory/MemoryRunStore.js"
import * as SqlRunStore from "../../src/adapters/sql/SqlRunStore.js"
import { backends, describeBackends } from "../support/backends.js"
import { createNamed, integer } from "../support/RunRequests.js"
import { baseUrl, layerTestServer } from "../support/TestApp.js"
import { attempt, runView } from "../support/Fixtures.js"
import { toPayload } from "../../src/adapters/connect/ProtoCodec.js"
import { RunsSettings } from "../../src/domain/RunsSettings.js"
import { BlobStore } from "../../src/ports/BlobStore.js"
import { RunStore } from "../../src/ports/RunStore.js"
import { create, toBinary } from "@bufbuild/protobuf"
import { ActionPhase } from "#gen/flyteidl2/common/phase_pb.js"
import { InputsSchema, OutputReferencesSchema, OutputsSchema } from "#gen/flyteidl2/task/common_pb.js"
import { call, failure, jsonClient, jsonClientAt } from "../support/WebUiClients.js"

const actionOf = (name: string) => ({
  run: { org: "testorg", project: "flytesnacks", domain: "development", name },
  name: "a0"
})

const selectAction = (name: string) => ({
  resource: { case: "actionId" as const, value: actionOf(name) },
  operation: SelectClusterRequest_Operation.GET_ACTION_DATA
})

describeBackends("Web UI data plane", backends({ memory: MemoryRunStore.layer, sql: SqlRunStore.layer }), (backend) => {
  it.effect("the UI's flow: SelectCluster for an action, then DataProxy GetActionData at the endpoint it returned", () =>
    Effect.gen(function*() {
      const runs = yield* jsonClient(RunService)
      const cluster = yield* jsonClient(ClusterService)
      yield* call(() =>
        runs.createRun(createNamed("ui-data", { inputWrapper: { case: "inputs", value: { literals: [{ name: "x", value: integer(7) }] } } }))
      )
      const { clusterEndpoint } = yield* call(() => cluster.selectCluster(selectAction("ui-data")))
      expect(clusterEndpoint).toBe(yield* baseUrl)
      const dataProxy = jsonClientAt(DataProxyService, clusterEndpoint)
      const data = yield* call(() => dataProxy.getActionData({ actionId: actionOf("ui-data") }))
      // The inputs sent, then the spec's default for `y`.
      expect(data.inputs?.literals.map((literal) => literal.name)).toEqual(["x", "y"])
      expect(data.outputs).toBeUndefined()
      // The same answer as RunService.GetActionData.
      const same = yield* call(() => runs.getActionData({ actionId: actionOf("ui-data") }))
      expect(same.inputs).toEqual(data.inputs)

      // A finished action: its outputs too (the Output panel).
      const store = yield* RunStore
      const blobs = yield* BlobStore
      const { storagePrefix } = yield* RunsSettings
      const base = `${storagePrefix}/flytesnacks/development/ui-done`
      const view = runView({
        key: { project: "flytesnacks", domain: "development", name: "ui-done" },
        phase: ActionPhase.SUCCEEDED,
        root: { inputUri: `${base}/inputs/inputs.pb` }
      })
      yield* store.createRun({ view, task: undefined })
      yield* blobs.write(`${base}/inputs/inputs.pb`, toBinary(InputsSchema, create(InputsSchema, { literals: [{ name: "x", value: integer(1) }] })))
      yield* blobs.write(`${base}/a0/1/outputs.pb`, toBinary(OutputsSchema, create(OutputsSchema, { literals: [{ name: "o", value: integer(42) }] })))
      yield* store.putAttempts(view.root.key, [
        attempt(1, {
          phase: ActionPhase.SUCCEEDED,
          outputs: toPayload(OutputReferencesSchema, create(OutputReferencesSchema, { outputUri: `${base}/a0/1` }))
        })
      ])
      const { clusterEndpoint: doneEndpoint } = yield* call(() => cluster.selectCluster(selectAction("ui-done")))
      const done = yield* call(() => jsonClientAt(DataProxyService, doneEndpoint).getActionData({ actionId: actionOf("ui-done") }))
      expect(done.outputs?.literals.map((literal) => literal.name)).toEqual(["o"])
      const viaRunService = yield* call(() => runs.getActionData({ actionId: actionOf("ui-done") }))
      expect({ inputs: done.inputs, outputs: done.outputs }).toEqual({ inputs: viaRunService.inputs, outputs: viaRunService.outputs })

      const missing = yield* failure(() => dataProxy.getActionData({ actionId: actionOf("no-such-run") }))
      expect(missing?.code).toBe(Code.NotFound)
      const invalid = yield* failure(() => dataProxy.getActionData({}))
      expect(invalid?.code).toBe(Code.InvalidArgument)
      expect(invalid?.rawMessage).toContain("action_id")
    }).pipe(Effect.provide(layerTestServer(backend.layer))))
})

describeBackends("ClusterService.SelectCluster", backends({ memory: MemoryRunStore.layer, sql: SqlRunStore.layer }), (backend) => {
  const forwarded = { "X-Forwarded-Proto": "https", "X-Forwarded-Host": "flyte.example.com", "X-Forwarded-Prefix": "/api/" }

  it.effect("answers every resource with this service's base URL; the request needs a resource and an operation", () =>
    Effect.gen(function*() {
      const cluster = yield* jsonClient(ClusterService, forwarded)
      const url = yield* baseUrl
      const resources = [
        { case: "projectId" as const, value: { organization: "testorg", name: "flytesnacks", domain: "development" } },
        { case: "orgId" as const, value: { name: "testorg" } },
        { case: "taskId" as const, value: { org: "testorg", project: "p", domain: "d", name: "t", version: "v" } }
      ]
      for (const resource of resources) {
        const answer = yield* call(() => cluster.selectCluster({ resource, operation: SelectClusterRequest_Operation.UPLOAD_INPUTS }))
        // Forwarded headers count only behind a trusted proxy.
        expect(answer.clusterEndpoint).toBe(url)
      }
      const noResource = yield* failure(() => cluster.selectCluster({ operation: SelectClusterRequest_Operation.GET_ACTION_DATA }))
      expect(noResource?.code).toBe(Code.InvalidArgument)
      expect(noResource?.rawMessage).toContain("resource")
      const noOperation = yield* failure(() => cluster.selectCluster({ resource: resources[0]! }))
      expect(noOperation?.code).toBe(Code.InvalidArgument)
      expect(noOperation?.rawMessage).toContain("operation")
    }).pipe(Effect.provide(layerTestServer(backend.layer))))

  it.effect("behind a trusted proxy: the forwarded scheme, host and prefix (X-Forwarded-*, or Forwarded)", () =>
    Effect.gen(function*() {
      const viaHeaders = yield* jsonClient(ClusterService, forwarded)
      expect((yield* call(() => viaHeaders.selectCluster(selectAction("any")))).clusterEndpoint).toBe("https://flyte.example.com/api")
      const viaForwarded = yield* jsonClient(ClusterService, { Forwarded: "for=10.0.0.1;proto=https;host=\"ui.example:8443\", for=10.0.0.2" })
      expect((yield* call(() => viaForwarded.selectCluster(selectAction("any")))).clusterEndpoint).toBe("https://ui.example:8443")
      const direct = yield* jsonClient(ClusterService)
      expect((yield* call(() => direct.selectCluster(selectAction("any")))).clusterEndpoint).toBe(yield* baseUrl)
    }).pipe(Effect.provide(layerTestServer(backend.layer, { trustIdentity: true }))))

  it.effect("runs.clusterEndpoint, when set, is the answer", () =>
    Effect.gen(function*() {
      const cluster = yield* jsonClient(ClusterService, forwarded)
      expect((yield* call(() => cluster.selectCluster(selectAction("any")))).clusterEndpoint).toBe("https://data.example.com")
    }).pipe(Effect.provide(layerTestServer(backend.layer, { trustIdentity: true, clusterEndpoint: "https://data.example.com" }))))
})
