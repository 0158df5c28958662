import { Code } from "@connectrpc/connect"
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { MessageInitShape } from "@bufbuild/protobuf"
import type { ActionEventSchema } from "#gen/flyteidl2/workflow/run_definition_pb.js"
import * as MemoryRunStore from "../../src/adapters/memory/MemoryRunStore.js"
import * as SqlRunStore from "../../src/adapters/sql/SqlRunStore.js"
import { backends, describeBackends } from "../support/backends.js"
import { createNamed } from "../support/RunRequests.js"
import { layerTestServer } from "../support/TestApp.js"
import { actionId, call, clients, openStream } from "./WatchSupport.js"

const base = 1_750_000_000n
const event = (attempt: number, phase: number, version: number, second: number, messages: ReadonlyArray<string>) => ({
  id: actionId("events", "t1"),
  attempt,
  phase,
  version,
  updatedTime: { seconds: base + BigInt(second) },
  reportedTime: { seconds: base + BigInt(second) },
  clusterEvents: messages.map((message) => ({ occurredAt: { seconds: base + BigInt(second) }, message }))
})

const messages = (response: { clusterEvents: ReadonlyArray<{ message: string }> }) => response.clusterEvents.map((e) => e.message)

describeBackends("WatchClusterEvents", backends({ memory: MemoryRunStore.layer, sql: SqlRunStore.layer }), (backend) => {
  const server = () => layerTestServer(backend.layer)

  const arrange = Effect.gen(function*() {
    const { internal, runs } = yield* clients
    yield* call(() => runs.createRun(createNamed("events")))
    yield* call(() => internal.recordAction({ actionId: actionId("events", "t1"), parent: "a0", spec: { case: "task", value: {} } }))
    const send = (...events: ReadonlyArray<MessageInitShape<typeof ActionEventSchema>>) => call(() => internal.recordActionEvents({ events: [...events] }))
    return { internal, runs, send }
  })

  it.scopedLive("an attempt's events so far, then new ones, each once, even one that lands in the middle; the end when the attempt ends", () =>
    Effect.gen(function*() {
      const { runs, send } = yield* arrange
      yield* send(event(1, 1, 0, 10, ["Scheduled"]))
      const stream = yield* openStream((signal) => runs.watchClusterEvents({ id: actionId("events", "t1"), attempt: 1 }, { signal }))
      expect(messages(yield* stream.next)).toEqual(["Scheduled"])
      yield* send(event(1, 4, 0, 20, ["Pulling", "Started"]))
      expect(messages(yield* stream.next)).toEqual(["Pulling", "Started"])
      // A re-sent event is ignored; an event of another attempt is not this stream's.
      yield* send(event(1, 4, 0, 20, ["Pulling", "Started"]), event(2, 1, 0, 40, ["Other attempt"]))
      yield* send(event(1, 3, 0, 15, ["Late, in the middle"]))
      expect(messages(yield* stream.next)).toEqual(["Late, in the middle"])
      yield* send(event(1, 6, 0, 30, ["Killed"]))
      expect(messages(yield* stream.next)).toEqual(["Killed"])
      yield* stream.end
    }).pipe(Effect.provide(server())))

  it.scopedLive("attempt 0 waits for an attempt, follows the latest one onto the next, and ends when the action settles", () =>
    Effect.gen(function*() {
      const { internal, runs, send } = yield* arrange
      const stream = yield* openStream((signal) => runs.watchClusterEvents({ id: actionId("events", "t1"), attempt: 0 }, { signal }))
      yield* send(event(1, 4, 0, 10, ["First try"]))
      expect(messages(yield* stream.next)).toEqual(["First try"])
      yield* send(event(1, 6, 0, 20, ["Failed"]))
      expect(messages(yield* stream.next)).toEqual(["Failed"])
      yield* send(event(2, 4, 0, 30, ["Second try"]))
      expect(messages(yield* stream.next)).toEqual(["Second try"])
      yield* send(event(2, 5, 0, 40, ["Done"]))
      expect(messages(yield* stream.next)).toEqual(["Done"])
      // The attempt is over but the action is not: the stream stays open until it is.
      yield* call(() => internal.updateActionStatus({ actionId: actionId("events", "t1"), status: { phase: 5, attempts: 2 } }))
      yield* stream.end

      const later = yield* openStream((signal) => runs.watchClusterEvents({ id: actionId("events", "t1"), attempt: 0 }, { signal }))
      expect(messages(yield* later.next)).toEqual(["Second try", "Done"])
      yield* later.end
    }).pipe(Effect.provide(server())))

  it.scopedLive("an unknown action is NotFound", () =>
    Effect.gen(function*() {
      const { runs } = yield* clients
      const stream = yield* openStream((signal) => runs.watchClusterEvents({ id: actionId("nope", "a0"), attempt: 1 }, { signal }))
      expect((yield* stream.failure).code).toBe(Code.NotFound)
    }).pipe(Effect.provide(server())))
})
