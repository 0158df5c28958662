import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Option, Stream } from "effect"
import { ActionPhase } from "#gen/flyteidl2/common/phase_pb.js"
import * as MemoryRunStore from "../../src/adapters/memory/MemoryRunStore.js"
import { Watches } from "../../src/domain/Watches.js"
import { createNamed } from "../support/RunRequests.js"
import { layerTestServer } from "../support/TestApp.js"
import { actionId, call, clients, openStream, project, runId } from "./WatchSupport.js"

/**
 * A consumer that does not pull at all, in process: what a client whose connection is stalled looks like to
 * the watch. Writes go through the RPCs meanwhile.
 */
describe("A watcher that does not read [memory]", () => {
  it.scopedLive("gets the latest state per entity when it reads again; past the buffer its stream fails; writers and others go on", () =>
    Effect.gen(function*() {
      const { internal, runs } = yield* clients
      const watches = yield* Watches
      yield* call(() => runs.createRun(createNamed("stalled")))
      yield* call(() => internal.recordAction({ actionId: actionId("stalled", "t1"), parent: "a0", spec: { case: "task", value: {} } }))

      const details = yield* Stream.toPull(watches.actionDetails({ run: { ...project, name: "stalled" }, name: "t1" }))
      const other = yield* openStream((signal) => runs.watchRunDetails({ runId: runId("stalled") }, { signal }))
      expect(Chunk.toReadonlyArray(yield* details).map((view) => view.action.phase)).toEqual([ActionPhase.QUEUED])
      yield* other.next

      for (const phase of [2, 3, 4]) {
        yield* call(() => internal.updateActionStatus({ actionId: actionId("stalled", "t1"), status: { phase, attempts: 1 } }))
      }
      yield* call(() => internal.updateActionStatus({ actionId: actionId("stalled", "a0"), status: { phase: 4, attempts: 1 } }))
      expect((yield* other.next).details?.action?.status?.phase).toBe(ActionPhase.RUNNING)
      expect(Chunk.toReadonlyArray(yield* details).map((view) => view.action.phase)).toEqual([ActionPhase.RUNNING])
      yield* call(() => internal.updateActionStatus({ actionId: actionId("stalled", "t1"), status: { phase: 5, attempts: 1 } }))
      expect(Chunk.toReadonlyArray(yield* details).map((view) => view.action.phase)).toEqual([ActionPhase.SUCCEEDED])

      const listing = yield* Stream.toPull(watches.runs({ kind: "all" }))
      expect(Chunk.toReadonlyArray(yield* listing).map((views) => views.length)).toEqual([1])
      for (const name of ["r1", "r2", "r3", "r4"]) yield* call(() => runs.createRun(createNamed(name)))
      const failure = yield* Effect.flip(listing)
      expect(Option.map(failure, (error) => error._tag)).toEqual(Option.some("ResourceExhausted"))
    }).pipe(Effect.provide(layerTestServer(MemoryRunStore.layer, { watchMaxPending: 3 }))))

  it.scopedLive("WatchActions: a stalled watcher gets what it missed in one message, each changed action once at its latest state, in the order they first changed; past the buffer its stream fails", () =>
    Effect.gen(function*() {
      const { internal, runs } = yield* clients
      const watches = yield* Watches
      yield* call(() => runs.createRun(createNamed("stalled-tree")))
      for (const name of ["t1", "t2", "t3", "t4", "t5"]) {
        yield* call(() => internal.recordAction({ actionId: actionId("stalled-tree", name), parent: "a0", spec: { case: "task", value: {} } }))
      }
      const status = (name: string, phase: number) =>
        call(() => internal.updateActionStatus({ actionId: actionId("stalled-tree", name), status: { phase, attempts: 1 } }))
      const tree = yield* Stream.toPull(watches.actions({ ...project, name: "stalled-tree" }, []))
      const other = yield* openStream((signal) => runs.watchActions({ runId: runId("stalled-tree") }, { signal }))
      expect(Chunk.toReadonlyArray(yield* tree).map((entries) => entries.length)).toEqual([6])
      yield* other.next

      // Each change reaches the watcher that reads, so the stalled one has been handed all of them too.
      for (const [name, phase] of [["t1", 2], ["t2", 2], ["t2", 3], ["t2", 4]] as const) {
        yield* status(name, phase)
        yield* other.next
      }
      // What it missed comes as one message: each changed action once, at its latest state, in first-change order (parents first).
      const next = Effect.map(tree, (chunk) =>
        Chunk.toReadonlyArray(chunk).map((entries) => entries.map((entry) => [entry.action.key.name, entry.action.phase])))
      expect(yield* next).toEqual([[
        ["a0", ActionPhase.QUEUED],
        ["t1", ActionPhase.WAITING_FOR_RESOURCES],
        ["t2", ActionPhase.RUNNING]
      ]])

      // Stalled again: four actions change while the buffer holds three.
      for (const name of ["t2", "t3", "t4", "t5"]) {
        yield* status(name, 5)
        yield* other.next
      }
      const failure = yield* Effect.flip(tree)
      expect(Option.map(failure, (error) => error._tag)).toEqual(Option.some("ResourceExhausted"))
      yield* status("a0", 4)
      expect((yield* other.next).enrichedActions.at(-1)?.action?.status?.phase).toBe(ActionPhase.RUNNING)
    }).pipe(Effect.provide(layerTestServer(MemoryRunStore.layer, { watchBufferSize: 1, watchMaxPending: 3 }))))
})
