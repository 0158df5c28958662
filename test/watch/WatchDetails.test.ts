import { Code } from "@connectrpc/connect"
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { ActionPhase } from "#gen/flyteidl2/common/phase_pb.js"
import * as MemoryRunStore from "../../src/adapters/memory/MemoryRunStore.js"
import * as SqlRunStore from "../../src/adapters/sql/SqlRunStore.js"
import { backends, describeBackends } from "../support/backends.js"
import { createNamed } from "../support/RunRequests.js"
import { layerTestServer } from "../support/TestApp.js"
import { actionId, call, clients, openStream, runId } from "./WatchSupport.js"

const event = (run: string, name: string, attempt: number, phase: number, second: number) => ({
  id: actionId(run, name),
  attempt,
  phase,
  version: 0,
  updatedTime: { seconds: BigInt(1_750_000_000 + second) },
  reportedTime: { seconds: BigInt(1_750_000_000 + second) }
})

describeBackends("WatchRunDetails and WatchActionDetails", backends({ memory: MemoryRunStore.layer, sql: SqlRunStore.layer }), (backend) => {
  const server = () => layerTestServer(backend.layer)

  it.scopedLive("WatchRunDetails: the run at once, each change of its root once and in order, the end right after it settles", () =>
    Effect.gen(function*() {
      const { internal, runs } = yield* clients
      yield* call(() => runs.createRun(createNamed("watched")))
      const stream = yield* openStream((signal) => runs.watchRunDetails({ runId: runId("watched", "any-org") }, { signal }))

      const first = yield* stream.next
      expect(first.details?.action?.status?.phase).toBe(ActionPhase.QUEUED)
      expect(first.details?.action?.attempts).toEqual([])
      expect(first.details?.runSpec?.rawDataStorage?.rawDataPrefix).toMatch(/^file:\/\//)

      yield* call(() => internal.updateActionStatus({ actionId: actionId("watched", "a0"), status: { phase: 4, attempts: 1 } }))
      expect((yield* stream.next).details?.action?.status?.phase).toBe(ActionPhase.RUNNING)

      // A child's change is not the run's.
      yield* call(() => internal.recordAction({ actionId: actionId("watched", "t1"), parent: "a0", spec: { case: "task", value: {} } }))
      yield* call(() => internal.recordActionEvents({ events: [event("watched", "a0", 1, 4, 1)] }))
      const running = yield* stream.next
      expect(running.details?.action?.attempts.map((attempt) => attempt.phase)).toEqual([ActionPhase.RUNNING])

      // A stale update changes nothing and sends nothing.
      yield* call(() => internal.updateActionStatus({ actionId: actionId("watched", "a0"), status: { phase: 1, attempts: 1 } }))
      yield* call(() => internal.updateActionStatus({ actionId: actionId("watched", "a0"), status: { phase: 5, attempts: 1 } }))
      const succeeded = yield* stream.next
      expect(succeeded.details?.action?.status?.phase).toBe(ActionPhase.SUCCEEDED)
      expect(succeeded.details?.action?.attempts.map((attempt) => attempt.phase)).toEqual([ActionPhase.RUNNING])

      // Terminal, but its attempt is not yet: the stream stays open until it is.
      yield* call(() => internal.recordActionEvents({ events: [event("watched", "a0", 1, 5, 2)] }))
      const settled = yield* stream.next
      expect(settled.details?.action?.attempts.map((attempt) => attempt.phase)).toEqual([ActionPhase.SUCCEEDED])
      yield* stream.end
    }).pipe(Effect.provide(server())))

  it.scopedLive("WatchActionDetails: an aborted action without attempts ends right after the abort; a settled one at once", () =>
    Effect.gen(function*() {
      const { internal, runs } = yield* clients
      yield* call(() => runs.createRun(createNamed("aborting")))
      yield* call(() => internal.recordAction({ actionId: actionId("aborting", "t1"), parent: "a0", spec: { case: "task", value: {} } }))
      const stream = yield* openStream((signal) => runs.watchActionDetails({ actionId: actionId("aborting", "t1") }, { signal }))
      expect((yield* stream.next).details?.status?.phase).toBe(ActionPhase.QUEUED)

      yield* call(() => runs.abortRun({ runId: runId("aborting"), reason: "stop" }))
      const aborted = yield* stream.next
      expect(aborted.details?.status?.phase).toBe(ActionPhase.ABORTED)
      expect(aborted.details?.result.case).toBe("abortInfo")
      yield* stream.end

      const again = yield* openStream((signal) => runs.watchActionDetails({ actionId: actionId("aborting", "t1") }, { signal }))
      expect((yield* again.next).details?.status?.phase).toBe(ActionPhase.ABORTED)
      yield* again.end
    }).pipe(Effect.provide(server())))

  it.scopedLive("WatchActionDetails: a failed attempt ends the stream only once the action is failed too", () =>
    Effect.gen(function*() {
      const { internal, runs } = yield* clients
      yield* call(() => runs.createRun(createNamed("retrying")))
      yield* call(() => internal.recordAction({ actionId: actionId("retrying", "t1"), parent: "a0", spec: { case: "task", value: {} } }))
      const stream = yield* openStream((signal) => runs.watchActionDetails({ actionId: actionId("retrying", "t1") }, { signal }))
      yield* stream.next
      yield* call(() => internal.recordActionEvents({ events: [event("retrying", "t1", 1, 4, 1), event("retrying", "t1", 1, 6, 2)] }))
      const failedAttempt = yield* stream.next
      expect(failedAttempt.details?.status?.phase).toBe(ActionPhase.QUEUED)
      expect(failedAttempt.details?.attempts.map((attempt) => attempt.phase)).toEqual([ActionPhase.FAILED])
      yield* call(() => internal.updateActionStatus({ actionId: actionId("retrying", "t1"), status: { phase: 6, attempts: 1 } }))
      expect((yield* stream.next).details?.status?.phase).toBe(ActionPhase.FAILED)
      yield* stream.end
    }).pipe(Effect.provide(server())))

  it.scopedLive("an unknown run or action is NotFound before any message", () =>
    Effect.gen(function*() {
      const { runs } = yield* clients
      const run = yield* openStream((signal) => runs.watchRunDetails({ runId: runId("nope") }, { signal }))
      const runFailure = yield* run.failure
      expect(runFailure.code).toBe(Code.NotFound)
      expect(runFailure.rawMessage).toBe("run flytesnacks/development/nope not found")
      const action = yield* openStream((signal) => runs.watchActionDetails({ actionId: actionId("nope", "a0") }, { signal }))
      expect((yield* action.failure).code).toBe(Code.NotFound)
    }).pipe(Effect.provide(server())))
})
