import { Code } from "@connectrpc/connect"
import { describe, expect, it } from "@effect/vitest"
import { Context, Deferred, Effect, Exit, Fiber, Layer, Ref, Scope } from "effect"
import { ActionPhase } from "#gen/flyteidl2/common/phase_pb.js"
import type { WatchActionsResponse, WatchRunDetailsResponse } from "#gen/flyteidl2/workflow/run_service_pb.js"
import * as MemoryRunStore from "../../src/adapters/memory/MemoryRunStore.js"
import * as SqlRunStore from "../../src/adapters/sql/SqlRunStore.js"
import { ServerAddress } from "../../src/app/ServerLive.js"
import { FeedSubscribers } from "../../src/ports/ChangeFeed.js"
import { RunStore } from "../../src/ports/RunStore.js"
import { backends, describeBackends } from "../support/backends.js"
import { createNamed } from "../support/RunRequests.js"
import { baseUrl, layerTestServer } from "../support/TestApp.js"
import { actionId, call, clients, clientsAt, eventually, openStream, runId } from "./WatchSupport.js"

type Read = "getRunDetails" | "getActionDetails" | "listActions" | "getAction"

/** Holds the next armed read of the store after it has read (so it returns the old state) until released. */
class ReadGate extends Context.Tag("test/ReadGate")<ReadGate, {
  readonly arm: (read: Read) => Effect.Effect<void>
  /** Completes when the armed read has read and is held. */
  readonly reading: Effect.Effect<void>
  readonly release: Effect.Effect<void>
  readonly hold: (read: Read) => Effect.Effect<void>
}>() {}

const layerGate = Layer.effect(ReadGate, Effect.gen(function*() {
  const make = (read: Read | undefined) =>
    Effect.map(Effect.all([Deferred.make<void>(), Deferred.make<void>()]), ([reading, released]) => ({ read, reading, released }))
  const current = yield* Ref.make(yield* make(undefined))
  return {
    arm: (read) => Effect.flatMap(make(read), (armed) => Ref.set(current, armed)),
    reading: Effect.flatMap(Ref.get(current), (armed) => Deferred.await(armed.reading)),
    release: Effect.flatMap(Ref.get(current), (armed) => Deferred.succeed(armed.released, undefined)),
    hold: (read) =>
      Effect.flatMap(Ref.get(current), (armed) =>
        armed.read !== read
          ? Effect.void
          : Effect.zipRight(
            Ref.set(current, { ...armed, read: undefined }),
            Effect.zipRight(Deferred.succeed(armed.reading, undefined), Deferred.await(armed.released))
          ))
  }
}))

/** The store with its run-details, action-details, action-list and action reads held by the gate when armed. */
const gated = <E>(inner: Layer.Layer<RunStore, E>) =>
  Layer.effect(RunStore, Effect.gen(function*() {
    const store = yield* RunStore
    const gate = yield* ReadGate
    return {
      ...store,
      getRunDetails: (key) => Effect.tap(store.getRunDetails(key), () => gate.hold("getRunDetails")),
      getActionDetails: (key) => Effect.tap(store.getActionDetails(key), () => gate.hold("getActionDetails")),
      listActions: (run, query) => Effect.tap(store.listActions(run, query), () => gate.hold("listActions")),
      getAction: (key) => Effect.tap(store.getAction(key), () => gate.hold("getAction"))
    }
  })).pipe(Layer.provide(inner))

/** The test server over the gated store; the test reaches the gate too. */
const gatedServer = <E>(inner: Layer.Layer<RunStore, E>, options: { readonly watchBufferSize?: number } = {}) =>
  layerTestServer(gated(inner), options).pipe(Layer.provideMerge(layerGate))

const status = (run: string, name: string, phase: number) =>
  Effect.flatMap(clients, ({ internal }) =>
    call(() => internal.updateActionStatus({ actionId: actionId(run, name), status: { phase, attempts: 1 } })))

describeBackends("Watches deliver what commits while the snapshot is read", backends({ memory: MemoryRunStore.layer, sql: SqlRunStore.layer }), (backend) => {
  it.scopedLive("WatchRunDetails: a change that commits during the snapshot read comes right after it", () =>
    Effect.gen(function*() {
      const { runs } = yield* clients
      const gate = yield* ReadGate
      yield* call(() => runs.createRun(createNamed("racing")))

      yield* gate.arm("getRunDetails")
      const details = yield* openStream((signal) => runs.watchRunDetails({ runId: runId("racing") }, { signal }))
      yield* gate.reading
      yield* status("racing", "a0", 4)
      yield* gate.release
      expect((yield* details.next).details?.action?.status?.phase).toBe(ActionPhase.QUEUED)
      expect((yield* details.next).details?.action?.status?.phase).toBe(ActionPhase.RUNNING)
    }).pipe(Effect.provide(gatedServer(backend.layer))))

  it.scopedLive("WatchActions: a watcher that joins while the shared tree reads a change gets the tree without it, then the change", () =>
    Effect.gen(function*() {
      const { internal, runs } = yield* clients
      const gate = yield* ReadGate
      yield* call(() => runs.createRun(createNamed("racing")))
      const names = (message: { enrichedActions: ReadonlyArray<{ action?: { id?: { name: string } } }> }) =>
        message.enrichedActions.map((entry) => entry.action?.id?.name)
      // A first watcher: the run's shared tree is loaded and followed.
      const first = yield* openStream((signal) => runs.watchActions({ runId: runId("racing") }, { signal }))
      expect(names(yield* first.next)).toEqual(["a0"])

      // The tree's read of t1 is held; a watcher that joins meanwhile starts from the tree as it is.
      yield* gate.arm("getAction")
      yield* call(() => internal.recordAction({ actionId: actionId("racing", "t1"), parent: "a0", spec: { case: "task", value: {} } }))
      yield* gate.reading
      const stream = yield* openStream((signal) => runs.watchActions({ runId: runId("racing") }, { signal }))
      expect(names(yield* stream.next)).toEqual(["a0"])
      yield* gate.release
      expect(names(yield* stream.next)).toEqual(["a0", "t1"])
      expect(names(yield* first.next)).toEqual(["a0", "t1"])
    }).pipe(Effect.provide(gatedServer(backend.layer))))

  it.scopedLive("WatchActions: an action recorded while the shared tree is first loaded reaches the first watcher", () =>
    Effect.gen(function*() {
      const { internal, runs } = yield* clients
      const gate = yield* ReadGate
      yield* call(() => runs.createRun(createNamed("racing")))
      yield* gate.arm("listActions")
      const stream = yield* openStream((signal) => runs.watchActions({ runId: runId("racing") }, { signal }))
      yield* gate.reading
      yield* call(() => internal.recordAction({ actionId: actionId("racing", "t1"), parent: "a0", spec: { case: "task", value: {} } }))
      yield* gate.release
      // The tree was read before t1 committed; t1's change, heard during the read, is applied to it before or
      // after the watcher's snapshot is taken: in it, or in the message right after it.
      const names = (message: { enrichedActions: ReadonlyArray<{ action?: { id?: { name: string } } }> }) =>
        message.enrichedActions.map((entry) => entry.action?.id?.name)
      const snapshot = names(yield* stream.next)
      if (snapshot.includes("t1")) expect(snapshot).toEqual(["a0", "t1"])
      else expect([snapshot, names(yield* stream.next)]).toEqual([["a0"], ["a0", "t1"]])
    }).pipe(Effect.provide(gatedServer(backend.layer))))
})

describe("Watches [memory]", () => {
  it.scopedLive("1,000 streams on one run share one subscription; cancelled, they leave none and no fiber behind", () =>
    Effect.gen(function*() {
      const { runs } = yield* clients
      // HTTP/2 sessions of 100 streams each (a server's usual limit per connection).
      const sessions = yield* Effect.map(baseUrl, (url) => Array.from({ length: 10 }, () => clientsAt(url).runs2))
      const subscribers = yield* FeedSubscribers
      yield* call(() => runs.createRun(createNamed("many")))
      const before = (yield* Fiber.roots).length
      const scope = yield* Scope.make()
      const streams = yield* Effect.forEach(
        Array.from({ length: 1000 }, (_, i) => i),
        (i) =>
          openStream<WatchRunDetailsResponse | WatchActionsResponse>((signal) =>
            i % 2 === 0
              ? sessions[i % 10]!.watchRunDetails({ runId: runId("many") }, { signal })
              : sessions[i % 10]!.watchActions({ runId: runId("many") }, { signal })
          ).pipe(Scope.extend(scope)),
        { concurrency: 100 }
      )
      yield* Effect.forEach(streams, (stream) => Effect.asVoid(stream.raw), { concurrency: 100 })
      // Watchers share one feed subscription, whatever they watch.
      expect(yield* subscribers.count).toBe(1)
      yield* Scope.close(scope, Exit.void)
      yield* eventually(Effect.map(subscribers.count, (n) => n === 0))
      yield* eventually(Effect.map(Fiber.roots, (roots) => roots.length <= before))
    }).pipe(Effect.provide(layerTestServer(MemoryRunStore.layer))), 60_000)

  it.scopedLive("shutdown ends an unfinished stream with Unavailable", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const server = yield* Layer.buildWithScope(layerTestServer(MemoryRunStore.layer), scope)
      const address = Context.get(server, ServerAddress)
      const { runs } = clientsAt(`http://${address.host}:${address.port}`)
      yield* call(() => runs.createRun(createNamed("open")))
      const stream = yield* openStream((signal) => runs.watchRunDetails({ runId: runId("open") }, { signal }))
      yield* stream.next
      yield* Effect.fork(Scope.close(scope, Exit.void))
      expect((yield* stream.failure).code).toBe(Code.Unavailable)
    }))
})
