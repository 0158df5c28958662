import { expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import type { TaskGroup } from "#gen/flyteidl2/workflow/run_definition_pb.js"
import * as MemoryRunStore from "../../src/adapters/memory/MemoryRunStore.js"
import * as SqlRunStore from "../../src/adapters/sql/SqlRunStore.js"
import { RunStore } from "../../src/ports/RunStore.js"
import { backends, describeBackends } from "../support/backends.js"
import { createNamed, taskSpec } from "../support/RunRequests.js"
import { layerTestServer } from "../support/TestApp.js"
import { actionId, call, clients, openStream } from "./WatchSupport.js"

const ofTask = (name: string, task: string) => createNamed(name, { task: { case: "taskSpec", value: taskSpec(task) } })
const scope = { case: "projectId" as const, value: { organization: "", name: "flytesnacks", domain: "development" } }
const since = { seconds: 0n }
const byName = (groups: ReadonlyArray<TaskGroup>) => groups.map((group) => group.taskName)

describeBackends("WatchGroups", backends({ memory: MemoryRunStore.layer, sql: SqlRunStore.layer }), (backend) => {
  const server = () => layerTestServer(backend.layer)

  it.scopedLive("every group with sentinel, then only the groups a change touched, pushed", () =>
    Effect.gen(function*() {
      const { internal, runs } = yield* clients
      yield* call(() => runs.createRun(ofTask("h1", "hello.main")))
      yield* call(() => runs.createRun(ofTask("h2", "hello.main")))
      yield* call(() => internal.recordActionEvents({
        events: [{ id: actionId("h1", "a0"), attempt: 1, phase: 6, updatedTime: { seconds: 1_750_000_000n }, errorInfo: { message: "bad input", kind: 1 } }]
      }))
      yield* call(() => internal.updateActionStatus({ actionId: actionId("h1", "a0"), status: { phase: 6, attempts: 1 } }))
      yield* call(() => runs.createRun(ofTask("o1", "other.task")))
      yield* call(() => runs.createRun(createNamed("elsewhere", { id: { case: "runId", value: { org: "", project: "p2", domain: "development", name: "elsewhere" } } })))

      const stream = yield* openStream((signal) => runs.watchGroups({ scopeBy: scope, startDate: since }, { signal }))
      const first = yield* stream.next
      expect(first.sentinel).toBe(true)
      expect(byName(first.taskGroups)).toEqual(["other.task", "hello.main"])
      const hello = first.taskGroups[1]!
      expect(hello).toMatchObject({ shortName: "main", environmentName: "default-env", totalRuns: 2n, averageFailureRate: 0.5 })
      expect(hello.recentStatuses.map((status) => [status.runName, status.phase])).toEqual([["h2", 1], ["h1", 6]])
      expect(hello.phaseCounts.map((entry) => [entry.phase, entry.count])).toEqual([[1, 1n], [6, 1n]])
      expect(hello.errorCounts).toMatchObject({ userError: 1n, systemError: 0n, unspecifiedError: 0n })
      expect(hello.latestFinishedTime).toBeDefined()
      expect(hello.averageDuration).toBeDefined()

      yield* call(() => internal.updateActionStatus({ actionId: actionId("h2", "a0"), status: { phase: 4, attempts: 1 } }))
      const changed = yield* stream.next
      expect(changed.sentinel).toBe(false)
      expect(byName(changed.taskGroups)).toEqual(["hello.main"])
      expect(changed.taskGroups[0]?.phaseCounts.map((entry) => [entry.phase, entry.count])).toEqual([[4, 1n], [6, 1n]])

      // A child's change and a run of another project touch no group.
      yield* call(() => internal.recordAction({ actionId: actionId("h2", "t1"), parent: "a0", spec: { case: "task", value: {} } }))
      yield* call(() => runs.createRun(createNamed("elsewhere-2", { id: { case: "runId", value: { org: "", project: "p2", domain: "development", name: "elsewhere-2" } } })))
      yield* call(() => runs.createRun(ofTask("n1", "new.task")))
      const created = yield* stream.next
      expect(created.sentinel).toBe(false)
      expect(byName(created.taskGroups)).toEqual(["new.task"])
      expect(created.taskGroups[0]?.totalRuns).toBe(1n)
    }).pipe(Effect.provide(server())))

  it.scopedLive("with end_date the stream ends after the first message; limit and the created_at sort are honoured", () =>
    Effect.gen(function*() {
      const { runs } = yield* clients
      yield* call(() => runs.createRun(ofTask("a1", "a.task")))
      yield* call(() => runs.createRun(ofTask("b1", "b.task")))
      const once = yield* openStream((signal) => runs.watchGroups({ scopeBy: scope, startDate: since, endDate: { seconds: 4_000_000_000n } }, { signal }))
      const first = yield* once.next
      expect(first.sentinel).toBe(true)
      expect(byName(first.taskGroups)).toEqual(["b.task", "a.task"])
      yield* once.end

      const limited = yield* openStream((signal) =>
        runs.watchGroups({
          scopeBy: scope,
          startDate: since,
          endDate: { seconds: 4_000_000_000n },
          request: { limit: 1 },
          knownSortFields: [{ sortBy: { case: "createdAt", value: 1 } }]
        }, { signal })
      )
      expect(byName((yield* limited.next).taskGroups)).toEqual(["a.task"])
      yield* limited.end

      const before = yield* openStream((signal) => runs.watchGroups({ scopeBy: scope, startDate: since, endDate: { seconds: 1n } }, { signal }))
      expect((yield* before.next).taskGroups).toEqual([])
      yield* before.end
    }).pipe(Effect.provide(server())))

  it.scopedLive("watchers of one project share one read of each changed run", () => {
    let runReads = 0
    const counted = Layer.effect(
      RunStore,
      Effect.map(RunStore, (store) => ({
        ...store,
        getRun: (key: Parameters<typeof store.getRun>[0]) => Effect.suspend(() => (runReads++, store.getRun(key)))
      }))
    ).pipe(Layer.provide(backend.layer))
    return Effect.gen(function*() {
      const { internal, runs } = yield* clients
      yield* call(() => runs.createRun(ofTask("h1", "hello.main")))
      const update = (phase: number) =>
        Effect.gen(function*() {
          const before = runReads
          yield* call(() => internal.updateActionStatus({ actionId: actionId("h1", "a0"), status: { phase, attempts: 1 } }))
          return runReads - before
        })
      // What the write itself reads, with no watcher.
      const alone = yield* update(2)
      const watchers = yield* Effect.forEach(
        Array.from({ length: 5 }),
        () => openStream((signal) => runs.watchGroups({ scopeBy: scope, startDate: since }, { signal }))
      )
      for (const watcher of watchers) expect((yield* watcher.next).sentinel).toBe(true)
      const before = runReads
      yield* call(() => internal.updateActionStatus({ actionId: actionId("h1", "a0"), status: { phase: 3, attempts: 1 } }))
      for (const watcher of watchers) {
        const changed = yield* watcher.next
        expect(changed.taskGroups[0]?.phaseCounts.map((entry) => entry.phase)).toEqual([3])
      }
      expect(runReads - before - alone).toBe(1)
    }).pipe(Effect.provide(layerTestServer(counted)))
  })
})
