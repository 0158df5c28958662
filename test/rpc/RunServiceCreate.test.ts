import { fromBinary } from "@bufbuild/protobuf"
import { Code, ConnectError, createClient } from "@connectrpc/connect"
import { createConnectTransport } from "@connectrpc/connect-node"
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { readdirSync, readFileSync } from "node:fs"
import { dirname } from "node:path"
import { fileURLToPath } from "node:url"
import { InputsSchema } from "#gen/flyteidl2/task/common_pb.js"
import { ActionPhase } from "#gen/flyteidl2/common/phase_pb.js"
import { ActionType, RunSource } from "#gen/flyteidl2/workflow/run_definition_pb.js"
import { RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import * as MemoryRunStore from "../../src/adapters/memory/MemoryRunStore.js"
import * as SqlRunStore from "../../src/adapters/sql/SqlRunStore.js"
import { RunsSettings } from "../../src/domain/RunsSettings.js"
import { backends, describeBackends } from "../support/backends.js"
import { createInProject, createNamed, integer, taskSpec } from "../support/RunRequests.js"
import { baseUrl, layerTestServer } from "../support/TestApp.js"

const client = Effect.map(baseUrl, (url) => createClient(RunService, createConnectTransport({ baseUrl: url, httpVersion: "2" })))

const call = <A>(f: () => Promise<A>) => Effect.promise(f)
const failure = (f: () => Promise<unknown>) =>
  Effect.promise(() => f().then(() => undefined, (error: unknown) => ConnectError.from(error)))

describeBackends("RunService CreateRun", backends({ memory: MemoryRunStore.layer, sql: SqlRunStore.layer }), (backend) => {
  const server = () => layerTestServer(backend.layer)

  it.effect("creates a named run from a task spec and inline inputs, writing the inputs with the defaults", () =>
    Effect.gen(function*() {
      const runs = yield* client
      const { storagePrefix } = yield* RunsSettings
      const { run } = yield* call(() => runs.createRun(createNamed("test-run-001")))
      const action = run!.action!
      expect(action.id?.run).toMatchObject({ org: "", project: "flytesnacks", domain: "development", name: "test-run-001" })
      expect(action.id?.name).toBe("a0")
      expect(action.metadata?.actionType).toBe(ActionType.TASK)
      expect(action.metadata?.spec.case).toBe("task")
      expect(action.metadata?.spec.value).toMatchObject({
        id: { project: "flytesnacks", domain: "development", name: "hello.main", version: "v1" },
        taskType: "python",
        shortName: "main"
      })
      expect(action.metadata?.funtionName).toBe("hello.main")
      expect(action.metadata?.environmentName).toBe("default-env")
      expect(action.metadata?.source).toBe(RunSource.CLI)
      expect(action.status?.phase).toBe(ActionPhase.QUEUED)
      expect(action.status?.attempts).toBe(1)
      expect(action.status?.startTime).toBeDefined()
      expect(action.status?.endTime).toBeUndefined()

      const uris = yield* call(() => runs.getActionDataURIs({ actionId: action.id! }))
      expect(uris.inputsUri).toBe(`${storagePrefix}/flytesnacks/development/test-run-001/inputs/inputs.pb`)
      expect(uris.outputsUri).toBe("")
      const inputs = fromBinary(InputsSchema, readFileSync(fileURLToPath(uris.inputsUri)))
      expect(inputs.literals.map((literal) => literal.name)).toEqual(["x", "y"])

      const data = yield* call(() => runs.getActionData({ actionId: action.id! }))
      expect(data.inputs?.literals.map((literal) => literal.name)).toEqual(["x", "y"])
      expect(data.outputs).toBeUndefined()
    }).pipe(Effect.provide(server())))

  it.effect("generates an upstream-style name for a project-scoped request", () =>
    Effect.gen(function*() {
      const runs = yield* client
      const { run } = yield* call(() =>
        runs.createRun(createInProject())
      )
      expect(run?.action?.id?.run?.name).toMatch(/^r[bcdfghjklmnpqrstvwxz2456789]{19}$/)
    }).pipe(Effect.provide(server())))

  it.effect("returns the existing run for the same request, AlreadyExists for a different one", () =>
    Effect.gen(function*() {
      const runs = yield* client
      const first = yield* call(() => runs.createRun(createNamed("same-name")))
      const again = yield* call(() => runs.createRun(createNamed("same-name", { id: { case: "runId", value: { org: "other-org", project: "flytesnacks", domain: "development", name: "same-name" } } })))
      expect(again.run?.action?.status?.startTime).toEqual(first.run?.action?.status?.startTime)
      const different = yield* failure(() =>
        runs.createRun(createNamed("same-name", { task: { case: "taskSpec", value: taskSpec("other.task") } }))
      )
      expect(different?.code).toBe(Code.AlreadyExists)
      expect(different?.rawMessage).toContain("flytesnacks/development/same-name")
    }).pipe(Effect.provide(server())))

  it.effect("keeps the inputs of the request that created the run when different requests race for its name", () =>
    Effect.gen(function*() {
      const runs = yield* client
      const { storagePrefix } = yield* RunsSettings
      const racers = 8
      const outcomes = yield* Effect.forEach(
        Array.from({ length: racers }, (_, i) => i),
        (i) =>
          call(() =>
            runs.createRun(createNamed("raced", { inputWrapper: { case: "inputs", value: { literals: [{ name: "x", value: integer(i) }] } } }))
              .then(() => ({ i, code: undefined }), (error: unknown) => ({ i, code: ConnectError.from(error).code }))
          ),
        { concurrency: "unbounded" }
      )
      const winners = outcomes.filter((outcome) => outcome.code === undefined)
      expect(winners).toHaveLength(1)
      expect(outcomes.filter((outcome) => outcome.code === Code.AlreadyExists)).toHaveLength(racers - 1)
      const file = fileURLToPath(`${storagePrefix}/flytesnacks/development/raced/inputs/inputs.pb`)
      const stored = fromBinary(InputsSchema, readFileSync(file)).literals[0]?.value
      expect(stored).toEqual(integer(winners[0]!.i))
      // No staged copy is left beside it.
      expect(readdirSync(dirname(file))).toEqual(["inputs.pb"])
    }).pipe(Effect.provide(server())))

  it.effect("returns the run a repeated x-request-id created", () =>
    Effect.gen(function*() {
      const runs = yield* client
      const request = createInProject()
      const headers = { "x-request-id": "7b0e6d8e-1d7c-4c43-9a55-6b3b0c1f2a11" }
      const first = yield* call(() => runs.createRun(request, { headers }))
      const retry = yield* call(() => runs.createRun(request, { headers }))
      expect(retry.run?.action?.id?.run?.name).toBe(first.run?.action?.id?.run?.name)
      const other = yield* call(() => runs.createRun(request))
      expect(other.run?.action?.id?.run?.name).not.toBe(first.run?.action?.id?.run?.name)
    }).pipe(Effect.provide(server())))

  it.effect("accepts the Python SDK's shape: empty org, offloaded inputs, no source", () =>
    Effect.gen(function*() {
      const runs = yield* client
      const { run } = yield* call(() =>
        runs.createRun({
          id: { case: "runId", value: { org: "", project: "flytesnacks", domain: "development", name: "sdk-run" } },
          task: { case: "taskSpec", value: taskSpec() },
          inputWrapper: { case: "offloadedInputData", value: { uri: "s3://bucket/inputs/abc/", inputsHash: "abc" } }
        })
      )
      expect(run?.action?.metadata?.source).toBe(RunSource.UNSPECIFIED)
      const uris = yield* call(() => runs.getActionDataURIs({ actionId: run!.action!.id! }))
      expect(uris.inputsUri).toBe("s3://bucket/inputs/abc/inputs.pb")
      const unreadable = yield* failure(() => runs.getActionData({ actionId: run!.action!.id! }))
      expect(unreadable?.code).toBe(Code.FailedPrecondition)
      expect(unreadable?.rawMessage).toContain("s3://")
    }).pipe(Effect.provide(server())))

  it.effect("accepts the web UI's JSON with fields unknown to 2.0.16", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      const response = yield* call(() =>
        fetch(`${url}/flyteidl2.workflow.RunService/CreateRun`, {
          method: "POST",
          headers: { "content-type": "application/json", "connect-protocol-version": "1", origin: "http://ui.example" },
          body: JSON.stringify({
            runId: { org: "testorg", project: "flytesnacks", domain: "development", name: "ui-run" },
            taskSpec: { taskTemplate: { id: { resourceType: "TASK", project: "flytesnacks", domain: "development", name: "hello.main", version: "v1" }, type: "python" } },
            inputs: {},
            source: "RUN_SOURCE_WEB",
            runSpec: { maxActionConcurrency: 5 }
          })
        })
      )
      expect(response.status).toBe(200)
      expect(response.headers.get("access-control-allow-origin")).toBe("http://ui.example")
      const body = (yield* call(() => response.json())) as { run: { action: { id: { run: { org: string; name: string } } } } }
      expect(body.run.action.id.run).toMatchObject({ org: "testorg", name: "ui-run" })
    }).pipe(Effect.provide(server())))

  it.effect("resolves task_id from the recorded task specs; unknown task is NotFound, triggers Unimplemented", () =>
    Effect.gen(function*() {
      const runs = yield* client
      yield* call(() => runs.createRun(createNamed("by-spec")))
      const byId = yield* call(() =>
        runs.createRun(createNamed("by-id", {
          task: { case: "taskId", value: { org: "", project: "flytesnacks", domain: "development", name: "hello.main", version: "v1" } }
        }))
      )
      expect(byId.run?.action?.metadata?.funtionName).toBe("hello.main")
      const details = yield* call(() => runs.getRunDetails({ runId: byId.run!.action!.id!.run! }))
      expect(details.details?.action?.spec.case).toBe("task")
      const unknown = yield* failure(() =>
        runs.createRun(createNamed("by-id-2", {
          task: { case: "taskId", value: { project: "flytesnacks", domain: "development", name: "nope", version: "v9" } }
        }))
      )
      expect(unknown?.code).toBe(Code.NotFound)
      expect(unknown?.rawMessage).toContain("nope")
      const trigger = yield* failure(() =>
        runs.createRun(createNamed("by-trigger", {
          task: { case: "triggerName", value: { org: "o", project: "flytesnacks", domain: "development", name: "nightly", taskName: "t" } }
        }))
      )
      expect(trigger?.code).toBe(Code.Unimplemented)
      expect(trigger?.rawMessage).toContain("trigger")
    }).pipe(Effect.provide(server())))

  it.effect("rejects bad names and missing tasks with InvalidArgument", () =>
    Effect.gen(function*() {
      const runs = yield* client
      for (const name of ["Bad_Name", "1starts-with-digit", "ends-with-dash-", "x".repeat(31)]) {
        const error = yield* failure(() => runs.createRun(createNamed(name)))
        expect(error?.code, name).toBe(Code.InvalidArgument)
        expect(error?.rawMessage, name).toContain("run_id.name")
      }
      const noTask = yield* failure(() => runs.createRun(createNamed("no-task", { task: { case: undefined } })))
      expect(noTask?.code).toBe(Code.InvalidArgument)
      expect(noTask?.rawMessage).toContain("task")
      const noTemplateId = yield* failure(() =>
        runs.createRun(createNamed("no-template", { task: { case: "taskSpec", value: { taskTemplate: { type: "python" } } } }))
      )
      expect(noTemplateId?.code).toBe(Code.InvalidArgument)
    }).pipe(Effect.provide(server())))

  it.effect("records the forwarded creator when trusted, and lists by created_by", () =>
    Effect.gen(function*() {
      const runs = yield* client
      const jwt = ["e30", Buffer.from(JSON.stringify({ sub: "bob@example.com" })).toString("base64url"), "sig"].join(".")
      const byHeader = yield* call(() => runs.createRun(createNamed("by-header"), { headers: { "x-forwarded-user": "alice@example.com" } }))
      expect(byHeader.run?.action?.metadata?.executedBy?.principal).toMatchObject({ case: "user", value: { id: { subject: "alice@example.com" } } })
      const byJwt = yield* call(() => runs.createRun(createNamed("by-jwt"), { headers: { authorization: `Bearer ${jwt}` } }))
      expect(byJwt.run?.action?.metadata?.executedBy?.principal.value).toMatchObject({ id: { subject: "bob@example.com" } })
      const mine = yield* call(() =>
        runs.listRuns({
          scopeBy: { case: "projectId", value: { organization: "", name: "flytesnacks", domain: "development" } },
          request: { filters: [{ field: "created_by", function: 7, values: ["alice@example.com"] }] }
        })
      )
      expect(mine.runs.map((run) => run.action?.id?.run?.name)).toEqual(["by-header"])
    }).pipe(Effect.provide(layerTestServer(backend.layer, { trustIdentity: true }))))

  it.effect("ignores forwarded identity unless trusted", () =>
    Effect.gen(function*() {
      const runs = yield* client
      const { run } = yield* call(() => runs.createRun(createNamed("untrusted"), { headers: { "x-forwarded-user": "mallory" } }))
      expect(run?.action?.metadata?.executedBy).toBeUndefined()
    }).pipe(Effect.provide(server())))
})
