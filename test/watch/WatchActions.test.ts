import { Code } from "@connectrpc/connect"
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { EnrichedAction } from "#gen/flyteidl2/workflow/run_definition_pb.js"
import * as MemoryRunStore from "../../src/adapters/memory/MemoryRunStore.js"
import * as SqlRunStore from "../../src/adapters/sql/SqlRunStore.js"
import { RunStore } from "../../src/ports/RunStore.js"
import { backends, describeBackends } from "../support/backends.js"
import { at, childAction } from "../support/Fixtures.js"
import { createNamed } from "../support/RunRequests.js"
import { layerTestServer } from "../support/TestApp.js"
import { actionId, call, clients, openStream, project, runId } from "./WatchSupport.js"

const VALUE_IN = 7
const CONTAINS_CASE_INSENSITIVE = 14

/** name → [meets_filter, children_phase_counts] */
const shown = (message: { enrichedActions: ReadonlyArray<EnrichedAction> }) =>
  message.enrichedActions.map((entry) => [entry.action?.id?.name, entry.meetsFilter, { ...entry.childrenPhaseCounts }])

const task = (name: string, parent: string, taskName = `wf.${name}`) => ({
  actionId: actionId("tree", name),
  parent,
  spec: { case: "task" as const, value: { id: { ...project, name: taskName, version: "v1" } } }
})

describeBackends("WatchActions", backends({ memory: MemoryRunStore.layer, sql: SqlRunStore.layer }), (backend) => {
  const server = () => layerTestServer(backend.layer)

  it.scopedLive("the tree parents first, phase counts over all descendants, then each change with its ancestors", () =>
    Effect.gen(function*() {
      const { internal, runs } = yield* clients
      yield* call(() => runs.createRun(createNamed("tree")))
      yield* call(() => internal.recordAction(task("t1", "a0")))
      yield* call(() => internal.recordAction(task("t2", "a0")))
      yield* call(() => internal.recordAction(task("c1", "t1")))
      const stream = yield* openStream((signal) => runs.watchActions({ runId: runId("tree") }, { signal }))

      const snapshot = yield* stream.next
      expect(shown(snapshot)).toEqual([
        ["a0", true, { 1: 3 }],
        ["t1", true, { 1: 1 }],
        ["t2", true, {}],
        ["c1", true, {}]
      ])
      expect(snapshot.enrichedActions[0]?.action?.id?.run).toMatchObject({ project: "flytesnacks", name: "tree" })

      yield* call(() => internal.updateActionStatus({ actionId: actionId("tree", "c1"), status: { phase: 4, attempts: 1 } }))
      expect(shown(yield* stream.next)).toEqual([
        ["a0", true, { 1: 2, 4: 1 }],
        ["t1", true, { 1: 0, 4: 1 }],
        ["c1", true, {}]
      ])

      // Events change nothing WatchActions shows; a child whose parent is not there yet is held.
      yield* call(() => internal.recordActionEvents({ events: [{ id: actionId("tree", "c1"), attempt: 1, phase: 4, updatedTime: { seconds: 1n } }] }))
      yield* call(() => internal.recordAction(task("orphan", "late")))
      yield* call(() => internal.recordAction(task("late", "t2")))
      const freed = yield* stream.next
      expect(shown(freed)).toEqual([
        ["a0", true, { 1: 4, 4: 1 }],
        ["t2", true, { 1: 2 }],
        ["late", true, { 1: 1 }],
        ["orphan", true, {}]
      ])
      expect(freed.enrichedActions.map((entry) => entry.action?.metadata?.parent)).toEqual(["", "a0", "t2", "late"])

      // An abort changes six actions, the root first; what the watcher has not read yet comes merged (each
      // action once, at its latest state), so it takes one to six messages.
      yield* call(() => runs.abortRun({ runId: runId("tree") }))
      const latest = new Map<string, ReturnType<typeof shown>[number]>()
      const order: Array<string> = []
      for (let i = 0; i < 6 && latest.size < 6; i++) {
        const message = yield* stream.next
        for (const entry of shown(message)) {
          const name = String(entry[0])
          if (!latest.has(name) && message.enrichedActions.find((e) => e.action?.id?.name === name)?.action?.status?.phase === 7) {
            order.push(name)
          }
          latest.set(name, entry)
        }
      }
      expect(order).toEqual(["a0", "t1", "t2", "c1", "late", "orphan"])
      expect([latest.get("a0"), latest.get("t2"), latest.get("late"), latest.get("orphan")]).toEqual([
        ["a0", true, { 1: 0, 4: 0, 7: 5 }],
        ["t2", true, { 1: 0, 7: 2 }],
        ["late", true, { 1: 0, 7: 1 }],
        ["orphan", true, {}]
      ])
    }).pipe(Effect.provide(server())))

  it.scopedLive("PHASE and NAME filters: matches and their path shown, a node that stops matching sent once as false", () =>
    Effect.gen(function*() {
      const { internal, runs } = yield* clients
      yield* call(() => runs.createRun(createNamed("tree")))
      yield* call(() => internal.recordAction(task("t1", "a0", "wf.alpha")))
      yield* call(() => internal.recordAction(task("t2", "a0", "wf.beta")))
      yield* call(() => internal.recordAction({ actionId: actionId("tree", "ALPHA-trace"), parent: "t2", spec: { case: "trace", value: { name: "f", spec: { interface: {} } } } }))

      const byName = yield* openStream((signal) =>
        runs.watchActions({ runId: runId("tree"), filter: [{ field: "NAME", function: CONTAINS_CASE_INSENSITIVE, values: ["ALP"] }] }, { signal })
      )
      expect(shown(yield* byName.next).map(([name, meets]) => [name, meets])).toEqual([
        ["a0", true],
        ["t1", true],
        ["t2", true],
        ["ALPHA-trace", true]
      ])

      const running = yield* openStream((signal) =>
        runs.watchActions({ runId: runId("tree"), filter: [{ field: "PHASE", function: VALUE_IN, values: ["4", "3"] }] }, { signal })
      )
      yield* call(() => internal.updateActionStatus({ actionId: actionId("tree", "t1"), status: { phase: 4, attempts: 1 } }))
      expect(shown(yield* running.next).map(([name, meets]) => [name, meets])).toEqual([["a0", true], ["t1", true]])
      yield* call(() => internal.updateActionStatus({ actionId: actionId("tree", "t1"), status: { phase: 5, attempts: 1 } }))
      expect(shown(yield* running.next).map(([name, meets]) => [name, meets])).toEqual([["a0", false], ["t1", false]])
      // t2 was never shown and still does not match: nothing is sent for it; its RUNNING child is.
      yield* call(() => internal.updateActionStatus({ actionId: actionId("tree", "t2"), status: { phase: 2, attempts: 1 } }))
      yield* call(() => internal.updateActionStatus({ actionId: actionId("tree", "a0"), status: { phase: 4, attempts: 1 } }))
      const root = yield* running.next
      expect(shown(root)).toEqual([["a0", true, { 1: 0, 2: 1, 4: 0, 5: 2 }]])
    }).pipe(Effect.provide(server())))

  it.scopedLive("an unknown run is NotFound; an unsupported filter is InvalidArgument before any message", () =>
    Effect.gen(function*() {
      const { runs } = yield* clients
      yield* call(() => runs.createRun(createNamed("tree")))
      const missing = yield* openStream((signal) => runs.watchActions({ runId: runId("nope") }, { signal }))
      expect((yield* missing.failure).code).toBe(Code.NotFound)
      const invalid = [
        { field: "phase", function: VALUE_IN, values: ["4"] },
        { field: "PHASE", function: 0, values: ["4"] },
        { field: "PHASE", function: VALUE_IN, values: ["RUNNING"] },
        { field: "NAME", function: 6, values: ["a"] },
        { field: "ENVIRONMENT", function: VALUE_IN, values: ["a"] }
      ]
      for (const filter of invalid) {
        const stream = yield* openStream((signal) => runs.watchActions({ runId: runId("tree"), filter: [filter] }, { signal }))
        const failure = yield* stream.failure
        expect(failure.code).toBe(Code.InvalidArgument)
        expect(failure.rawMessage).toContain("filter[0]")
      }
    }).pipe(Effect.provide(server())))

  it.scopedLive("a large run comes in messages of up to 1,000 actions, parents first even when a child is older", () =>
    Effect.gen(function*() {
      const { runs } = yield* clients
      const store = yield* RunStore
      const created = yield* call(() => runs.createRun(createNamed("large")))
      const key = { ...project, name: "large" }
      const start = created.run?.action?.status?.startTime?.seconds ?? 0n
      const base = new Date(Number(start) * 1000 + 10_000)
      // The first child is older than its parent, which comes last.
      yield* store.recordAction(childAction(key, "n0", { parent: "p", createdAt: at(-100), startedAt: at(-100) }))
      for (let i = 1; i < 1200; i++) {
        yield* store.recordAction(childAction(key, `n${i}`, { createdAt: new Date(base.getTime() + i), startedAt: base }))
      }
      yield* store.recordAction(childAction(key, "p", { createdAt: new Date(base.getTime() + 5000), startedAt: base }))
      const stream = yield* openStream((signal) => runs.watchActions({ runId: runId("large") }, { signal }))
      const first = yield* stream.next
      const second = yield* stream.next
      expect(first.enrichedActions.length).toBe(1000)
      expect(second.enrichedActions.length).toBe(202)
      const order = [...first.enrichedActions, ...second.enrichedActions].map((entry) => entry.action?.id?.name)
      expect(order[0]).toBe("a0")
      expect(order.indexOf("n0")).toBeGreaterThan(order.indexOf("p"))
      expect(first.enrichedActions[0]?.childrenPhaseCounts).toEqual({ 1: 1201 })
    }).pipe(Effect.provide(server())), 60_000)
})
