import { expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { ActionPhase } from "#gen/flyteidl2/common/phase_pb.js"
import * as MemoryRunStore from "../../src/adapters/memory/MemoryRunStore.js"
import * as SqlRunStore from "../../src/adapters/sql/SqlRunStore.js"
import { backends, describeBackends } from "../support/backends.js"
import { createNamed } from "../support/RunRequests.js"
import { layerTestServer } from "../support/TestApp.js"
import { actionId, call, clients, openStream, runId } from "./WatchSupport.js"

const children = 1700
// Three changes a child (recorded, RUNNING, SUCCEEDED): 5,100 in all.
const phases = [ActionPhase.RUNNING, ActionPhase.SUCCEEDED]
const writesPerRead = 250
// The stall limit ends a client that stops reading (SlowConsumer tests it); here the client reads after every
// 250 writes, which a loaded machine may take longer than the default 30 s to make.
const watchStallTimeout = Duration.minutes(5)

describeBackends("A big run watched live", backends({ memory: MemoryRunStore.layer, sql: SqlRunStore.layer }), (backend) => {
  it.scopedLive("a watcher that reads slowly through a burst of 5,100 changes is not ended and ends with every action's final state", () =>
    Effect.gen(function*() {
      const { internal, runs, runs2 } = yield* clients
      yield* call(() => runs.createRun(createNamed("fanout")))
      const stream = yield* openStream((signal) => runs2.watchActions({ runId: runId("fanout") }, { signal }))
      const latest = new Map<string, ActionPhase>()
      let messages = 0
      const read = Effect.map(stream.next, (message) => {
        messages++
        for (const entry of message.enrichedActions) {
          const name = entry.action?.id?.name
          if (name !== undefined) latest.set(name, entry.action?.status?.phase ?? ActionPhase.UNSPECIFIED)
        }
      })
      yield* read
      expect(Array.from(latest.keys())).toEqual(["a0"])

      const names = Array.from({ length: children }, (_, i) => `c${i}`)
      const writes: Array<() => Promise<unknown>> = [
        ...names.map((name) => () =>
          internal.recordAction({ actionId: actionId("fanout", name), parent: "a0", spec: { case: "task", value: {} } })),
        ...phases.flatMap((phase) =>
          names.map((name) => () => internal.updateActionStatus({ actionId: actionId("fanout", name), status: { phase, attempts: 1 } })))
      ]
      // The writers go on at full speed; the watcher takes one message per 250 acknowledged writes.
      for (let start = 0; start < writes.length; start += writesPerRead) {
        yield* Effect.forEach(writes.slice(start, start + writesPerRead), (write) => call(write), { concurrency: 16, discard: true })
        yield* read
      }
      const done = () => names.every((name) => latest.get(name) === ActionPhase.SUCCEEDED)
      while (!done()) yield* read
      expect(latest.size).toBe(children + 1)
      // Far fewer messages than changes: what it fell behind on came merged.
      expect(messages).toBeLessThan(children * 3)
    }).pipe(Effect.provide(layerTestServer(backend.layer, { watchStallTimeout }))), 180_000)
})
