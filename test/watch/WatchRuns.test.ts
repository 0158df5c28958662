import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { ActionPhase } from "#gen/flyteidl2/common/phase_pb.js"
import * as MemoryRunStore from "../../src/adapters/memory/MemoryRunStore.js"
import * as SqlRunStore from "../../src/adapters/sql/SqlRunStore.js"
import { backends, describeBackends } from "../support/backends.js"
import { createNamed, taskSpec } from "../support/RunRequests.js"
import { layerTestServer } from "../support/TestApp.js"
import { actionId, call, clients, openStream } from "./WatchSupport.js"

const inProject = (project: string, name: string) =>
  createNamed(name, { id: { case: "runId", value: { org: "", project, domain: "development", name } } })

const names = (message: { runs: ReadonlyArray<{ action?: { id?: { run?: { name: string } } } }> }) =>
  message.runs.map((run) => run.action?.id?.run?.name)

describeBackends("WatchRuns", backends({ memory: MemoryRunStore.layer, sql: SqlRunStore.layer }), (backend) => {
  const server = () => layerTestServer(backend.layer)

  it.scopedLive("first the newest runs (an empty message when there are none), then each created or changed run once", () =>
    Effect.gen(function*() {
      const { internal, runs } = yield* clients
      const empty = yield* openStream((signal) => runs.watchRuns({ target: { case: "org", value: "" } }, { signal }))
      expect((yield* empty.next).runs).toEqual([])

      yield* call(() => runs.createRun(createNamed("first")))
      yield* call(() => runs.createRun(createNamed("second")))
      expect(names(yield* empty.next)).toEqual(["first"])
      expect(names(yield* empty.next)).toEqual(["second"])

      const stream = yield* openStream((signal) => runs.watchRuns({ target: { case: "org", value: "any" } }, { signal }))
      expect(names(yield* stream.next)).toEqual(["second", "first"])

      // Not a change of a run: a child recorded, events of the root, the same request again.
      yield* call(() => internal.recordAction({ actionId: actionId("first", "t1"), parent: "a0", spec: { case: "task", value: {} } }))
      yield* call(() => internal.recordActionEvents({ events: [{ id: actionId("first", "a0"), attempt: 1, phase: 4, updatedTime: { seconds: 1n } }] }))
      yield* call(() => runs.createRun(createNamed("first")))
      yield* call(() => internal.updateActionStatus({ actionId: actionId("first", "a0"), status: { phase: 4, attempts: 1 } }))
      const running = yield* stream.next
      expect(names(running)).toEqual(["first"])
      expect(running.runs[0]?.action?.status?.phase).toBe(ActionPhase.RUNNING)
      yield* call(() => runs.abortRun({ runId: { org: "", project: "flytesnacks", domain: "development", name: "second" } }))
      const aborted = yield* stream.next
      expect(names(aborted)).toEqual(["second"])
      expect(aborted.runs[0]?.action?.status?.phase).toBe(ActionPhase.ABORTED)
    }).pipe(Effect.provide(server())))

  it.scopedLive("targets: a project, a task id, a cluster", () =>
    Effect.gen(function*() {
      const { runs } = yield* clients
      yield* call(() => runs.createRun(inProject("other", "elsewhere")))
      const byProject = yield* openStream((signal) =>
        runs.watchRuns({ target: { case: "projectId", value: { organization: "", name: "flytesnacks", domain: "development" } } }, { signal })
      )
      const byTask = yield* openStream((signal) =>
        runs.watchRuns({ target: { case: "taskId", value: { org: "", project: "flytesnacks", domain: "development", name: "other.task", version: "v2" } } }, { signal })
      )
      const byCluster = yield* openStream((signal) =>
        runs.watchRuns({ target: { case: "clusterId", value: { organization: "", name: "gpu" } } }, { signal })
      )
      expect((yield* byProject.next).runs).toEqual([])
      expect((yield* byTask.next).runs).toEqual([])
      expect((yield* byCluster.next).runs).toEqual([])

      yield* call(() => runs.createRun(inProject("other", "elsewhere-2")))
      yield* call(() => runs.createRun(createNamed("plain")))
      yield* call(() => runs.createRun(createNamed("on-gpu", { runSpec: { cluster: "gpu" } })))
      yield* call(() => runs.createRun(createNamed("of-task", { task: { case: "taskSpec", value: taskSpec("other.task", "v2") } })))
      expect(names(yield* byProject.next)).toEqual(["plain"])
      expect(names(yield* byProject.next)).toEqual(["on-gpu"])
      expect(names(yield* byProject.next)).toEqual(["of-task"])
      expect(names(yield* byCluster.next)).toEqual(["on-gpu"])
      expect(names(yield* byTask.next)).toEqual(["of-task"])

      const cluster = yield* openStream((signal) =>
        runs.watchRuns({ target: { case: "clusterId", value: { organization: "", name: "gpu" } } }, { signal })
      )
      expect(names(yield* cluster.next)).toEqual(["on-gpu"])
    }).pipe(Effect.provide(server())))
})
