import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect"
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node"
import { Data, Effect } from "effect"
import { ActionPhase } from "#gen/flyteidl2/common/phase_pb.js"
import { InternalRunService } from "#gen/flyteidl2/workflow/internal_run_service_pb.js"
import { RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import { runSteps, scriptedRun } from "./ExecutorScript.js"
import { integer, project, taskSpec } from "./Requests.js"

export class StepFailed extends Data.TaggedError("StepFailed")<{ readonly step: number; readonly message: string }> {}

const describe = (error: unknown) =>
  error instanceof ConnectError ? `${Code[error.code]}: ${error.rawMessage}` : String(error)

/** Bearer tokens for a service with `runs.auth` on: one for the user steps, one for the executor steps. */
export interface ClientTokens {
  readonly user?: string | undefined
  readonly executor?: string | undefined
}

const bearer = (token: string | undefined): Array<Interceptor> =>
  token === undefined ? [] : [(next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`)
    return next(req)
  }]

/**
 * The test client of the original README, against a running service: one `Test N: ...` line and one
 * `✓ ...` line per step, then the executor and watch steps that show the rest of the service.
 */
export const runTestClient = (endpoint: string, print: (line: string) => void, tokens: ClientTokens = {}) =>
  Effect.gen(function*() {
    const user = bearer(tokens.user)
    const runs = createClient(RunService, createConnectTransport({ baseUrl: endpoint, httpVersion: "1.1", interceptors: user }))
    const internal = createClient(
      InternalRunService,
      createConnectTransport({ baseUrl: endpoint, httpVersion: "1.1", interceptors: bearer(tokens.executor) })
    )
    const streaming = createClient(RunService, createGrpcTransport({ baseUrl: endpoint, interceptors: user }))
    let step = 0
    const test = <A>(title: string, body: () => Promise<A>, done: (result: A) => string) =>
      Effect.gen(function*() {
        step += 1
        print(`${step > 1 ? "\n" : ""}Test ${step}: ${title}...`)
        const current = step
        const result = yield* Effect.tryPromise({
          try: body,
          catch: (error) => new StepFailed({ step: current, message: describe(error) })
        })
        print(`✓ ${done(result)}`)
        return result
      })
    const runId = (name: string) => ({ org: "", project: project.name, domain: project.domain, name })
    const inputs = { case: "inputs" as const, value: { literals: [{ name: "x", value: integer(1) }] } }

    // A second execution gets the same run back (same request); a run of that name made by another request
    // (e.g. by hand with buf curl) is used as it is.
    yield* test("Creating a run with task spec", () =>
      runs.createRun({
        id: { case: "runId", value: runId("test-run-001") },
        task: { case: "taskSpec", value: taskSpec() },
        inputWrapper: inputs
      }).then(
        (response) => `Run created successfully: ${response.run?.action?.id?.run?.name}`,
        (error: unknown) => {
          if (error instanceof ConnectError && error.code === Code.AlreadyExists) {
            return "Run already exists: test-run-001 (created by another request; using it)"
          }
          throw error
        }
      ), (line) => line)
    const generated = yield* test("Creating a run with auto-generated name", () =>
      runs.createRun({ id: { case: "projectId", value: project }, task: { case: "taskSpec", value: taskSpec() }, inputWrapper: inputs }),
      (response) => `Run with auto-generated name created: ${response.run?.action?.id?.run?.name}`)
    const generatedName = generated.run?.action?.id?.run?.name ?? ""
    yield* test("Getting run details", () => runs.getRunDetails({ runId: runId("test-run-001") }), (response) => {
      const action = response.details?.action
      return `Retrieved run details: ${action?.id?.run?.name} phase=${ActionPhase[action?.status?.phase ?? 0]} task=${
        action?.spec.case === "task" ? action.spec.value.taskTemplate?.id?.name : "-"
      } attempts=${action?.status?.attempts}`
    })
    yield* test("Listing runs", () =>
      runs.listRuns({ scopeBy: { case: "projectId", value: project }, request: { limit: 200, sortBy: { key: "created_at" } } }),
      (response) => `Found ${response.runs.length} runs`)
    yield* test("Listing actions for the run", () => runs.listActions({ runId: runId("test-run-001") }),
      (response) => `Found ${response.actions.length} actions`)
    yield* test("Aborting an action", () =>
      runs.abortAction({ actionId: { run: runId("test-run-001"), name: "a0" }, reason: "test client: abort an action" }),
      () => "Action aborted successfully")
    yield* test("Aborting a run", () => runs.abortRun({ runId: runId(generatedName), reason: "test client: abort a run" }),
      () => "Run aborted successfully")

    const live = yield* test("Creating a run for an executor to drive", () =>
      runs.createRun({ id: { case: "projectId", value: project }, task: { case: "taskSpec", value: taskSpec() }, inputWrapper: inputs }),
      (response) => `Run created: ${response.run?.action?.id?.run?.name}`)
    const liveKey = { project: project.name, domain: project.domain, name: live.run?.action?.id?.run?.name ?? "" }
    const script = scriptedRun(liveKey)
    const phases: Array<ActionPhase> = []
    const watch = streaming.watchRunDetails({ runId: runId(liveKey.name) }, { timeoutMs: 30_000 })[Symbol.asyncIterator]()
    const first = yield* Effect.promise(() => watch.next().catch((error: unknown) => ({ error })))
    const watching = "error" in first
      ? Promise.reject(first.error)
      : (async () => {
        if (first.done !== true) phases.push(first.value.details?.action?.status?.phase ?? ActionPhase.UNSPECIFIED)
        for (let next = await watch.next(); next.done !== true; next = await watch.next()) {
          phases.push(next.value.details?.action?.status?.phase ?? ActionPhase.UNSPECIFIED)
        }
        return phases
      })()
    watching.catch(() => undefined)
    yield* test("Recording child actions, statuses and events as an executor would", async () => {
      const codes = await runSteps(internal, [...script.records, ...script.reports])
      const failed = codes.findIndex((code) => code !== 0)
      if (failed >= 0) throw new Error(`executor step ${failed + 1} answered in-band code ${codes[failed]}`)
      return (await runs.listActions({ runId: runId(liveKey.name) })).actions
    }, (actions) => `Recorded ${actions.length} actions: ${actions.map((a) => `${a.id?.name}=${ActionPhase[a.status?.phase ?? 0]}`).sort().join(", ")}`)
    yield* test("Watching the run until it finishes", () => watching, (seen) => {
      const distinct = seen.filter((phase, index) => index === 0 || seen[index - 1] !== phase)
      return `Run finished: ${ActionPhase[seen.at(-1) ?? 0]} after ${seen.length} updates (${distinct.map((phase) => ActionPhase[phase]).join(" → ")})`
    })

    print("\nAll tests completed successfully! 🎉")
  })
