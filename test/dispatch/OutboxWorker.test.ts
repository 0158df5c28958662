import { equals } from "@bufbuild/protobuf"
import { expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Ref, Scope } from "effect"
import { RunSpecSchema } from "#gen/flyteidl2/task/run_pb.js"
import { TaskSpecSchema } from "#gen/flyteidl2/task/task_definition_pb.js"
import * as ActionsDispatcher from "../../src/adapters/dispatch/ActionsDispatcher.js"
import * as LoggingDispatcher from "../../src/adapters/dispatch/LoggingDispatcher.js"
import * as MemoryRunStore from "../../src/adapters/memory/MemoryRunStore.js"
import * as SqlOutbox from "../../src/adapters/sql/SqlOutbox.js"
import * as SqlRunStore from "../../src/adapters/sql/SqlRunStore.js"
import { Runs } from "../../src/domain/Runs.js"
import { RunsSettings } from "../../src/domain/RunsSettings.js"
import { Dispatcher } from "../../src/ports/Dispatcher.js"
import { Outbox, OutboxUnavailable } from "../../src/ports/Outbox.js"
import { NotReady, Readiness } from "../../src/ports/Readiness.js"
import { RunStore, StoreUnavailable } from "../../src/ports/RunStore.js"
import { type Backend, backends, describeBackends } from "../support/backends.js"
import {
  allSettled,
  capturingLogger,
  createRequest,
  layerActionsWorker,
  layerWorker,
  outboxOf,
  states
} from "../support/Dispatch.js"
import { taskSpec } from "../support/RunRequests.js"
import { layerRuns } from "../support/TestApp.js"
import { makeTcpProxy } from "../support/TcpProxy.js"
import { eventually, makeTestExecutor } from "../support/TestExecutor.js"

const stores = backends({ memory: MemoryRunStore.layerWithOutbox, sql: Layer.merge(SqlRunStore.layer, SqlOutbox.layer) })

describeBackends("OutboxWorker", stores, (backend: Backend<RunStore | Outbox>) => {
  /** The run use cases and the outbox over one store instance (the layer is memoized within one build). */
  const provided = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    effect.pipe(Effect.scoped, Effect.provide(Layer.merge(layerRuns(backend.layer), backend.layer)))

  it.live("a created run is enqueued once, with its task spec, inputs directory, output base and run spec", () =>
    provided(Effect.gen(function*() {
      const executor = yield* makeTestExecutor
      yield* Layer.build(layerActionsWorker(executor))
      const runs = yield* Runs
      const { storagePrefix } = yield* RunsSettings
      const view = yield* runs.create(createRequest("enqueue-me"))
      yield* eventually("the enqueue is delivered", allSettled([view.run.key]))

      expect(states(yield* outboxOf(view.run.key))).toEqual(["enqueue:delivered"])
      expect(executor.calls.map((call) => [call.kind, call.answer])).toEqual([["enqueue", "ok"]])
      const call = executor.calls[0]!
      if (call.kind !== "enqueue") return expect.fail("expected an enqueue")
      const { action, runSpec } = call.request
      const base = `${storagePrefix}/flytesnacks/development/enqueue-me`
      expect(view.root.inputUri).toBe(`${base}/inputs/inputs.pb`)
      expect(action?.actionId).toMatchObject({
        run: { org: "acme", project: "flytesnacks", domain: "development", name: "enqueue-me" },
        name: "a0"
      })
      expect(action?.parentActionName).toBeUndefined()
      expect(action?.inputUri).toBe(`${base}/inputs`)
      expect(action?.runOutputBase).toBe(`${base}/`)
      if (action?.spec.case !== "task") return expect.fail("expected a task spec")
      expect(action.spec.value.id).toMatchObject({
        project: "flytesnacks",
        domain: "development",
        name: "hello.main",
        version: "v1"
      })
      expect(action.spec.value.cacheKey).toBe("")
      expect(equals(TaskSpecSchema, action.spec.value.spec!, taskSpec())).toBe(true)
      expect(runSpec?.cluster).toBe("cluster-a")
      expect(runSpec?.rawDataStorage?.rawDataPrefix).toBe(storagePrefix)
      expect(equals(RunSpecSchema, runSpec!, { ...runSpec!, cluster: "cluster-a" })).toBe(true)
    })))

  it.live("offloaded inputs are sent as the directory they were given", () =>
    provided(Effect.gen(function*() {
      const executor = yield* makeTestExecutor
      yield* Layer.build(layerActionsWorker(executor))
      const runs = yield* Runs
      const view = yield* runs.create(createRequest("offloaded", { kind: "offloaded", uri: "s3://bucket/in/abc/" }))
      yield* eventually("the enqueue is delivered", allSettled([view.run.key]))
      const call = executor.calls[0]
      expect(call?.kind === "enqueue" ? call.request.action?.inputUri : undefined).toBe("s3://bucket/in/abc")
    })))

  it.live("an abort is delivered with its reason, after the run's enqueue even when that one is retried", () =>
    provided(Effect.gen(function*() {
      const executor = yield* makeTestExecutor
      executor.behavior.failNext = 2
      const runs = yield* Runs
      const view = yield* runs.create(createRequest("abort-me"))
      yield* runs.abortRun(view.run.key, "no longer needed")
      yield* Layer.build(layerActionsWorker(executor))
      yield* eventually("both requests are delivered", allSettled([view.run.key]))

      expect(states(yield* outboxOf(view.run.key))).toEqual(["enqueue:delivered", "abort:delivered"])
      expect(executor.calls.map((call) => `${call.kind}:${call.answer === "ok" ? "ok" : "failed"}`)).toEqual([
        "enqueue:failed",
        "enqueue:failed",
        "enqueue:ok",
        "abort:ok"
      ])
      const abort = executor.calls[3]!
      if (abort.kind !== "abort") return expect.fail("expected an abort")
      expect(abort.request.reason).toBe("no longer needed")
      expect(abort.request.actionId).toMatchObject({ run: { org: "acme", name: "abort-me" }, name: "a0" })
    })))

  it.live("an executor that fails the first calls still receives the request; attempts and error are kept", () =>
    provided(Effect.gen(function*() {
      const executor = yield* makeTestExecutor
      executor.behavior.failNext = 4
      yield* Layer.build(layerActionsWorker(executor))
      const view = yield* Effect.flatMap(Runs, (runs) => runs.create(createRequest("flaky")))
      yield* eventually("the enqueue is delivered", allSettled([view.run.key]))
      const [request] = yield* outboxOf(view.run.key)
      expect(request).toMatchObject({ state: "delivered", attempts: 5 })
      expect(request?.lastError).toMatch(/^Unavailable: /)
      expect(executor.calls.filter((call) => call.answer === "ok")).toHaveLength(1)
    })))

  it.live("a send unanswered within the delivery timeout is retried with that error; the round's others are delivered", () =>
    provided(Effect.gen(function*() {
      // The first enqueue of run `stuck` never answers; every other call is answered at once.
      const hung = yield* Ref.make(false)
      const dispatcher = Layer.succeed(Dispatcher, Dispatcher.of({
        enqueue: (request) =>
          request.action.run.name === "stuck"
            ? Effect.flatMap(Ref.getAndSet(hung, true), (already) => (already ? Effect.void : Effect.never))
            : Effect.void,
        abort: () => Effect.void
      }))
      const runs = yield* Runs
      const stuck = yield* runs.create(createRequest("stuck"))
      const prompt = yield* runs.create(createRequest("prompt"))
      yield* Layer.build(layerWorker(dispatcher, { deliveryTimeout: "300 millis" }))
      yield* eventually("both enqueues are delivered", allSettled([stuck.run.key, prompt.run.key]))
      const [first] = yield* outboxOf(stuck.run.key)
      expect(first).toMatchObject({ state: "delivered", attempts: 2, lastError: "no answer within 300ms" })
      const [second] = yield* outboxOf(prompt.run.key)
      expect(second).toMatchObject({ state: "delivered", attempts: 1 })
    })))

  it.live("a restart in the middle loses nothing: the next worker delivers what is left", () =>
    provided(Effect.gen(function*() {
      const executor = yield* makeTestExecutor
      executor.behavior.delayMs = 100
      const runs = yield* Runs
      const first = yield* Effect.forEach([1, 2, 3, 4, 5], (i) => runs.create(createRequest(`restart-${i}`)))
      const keys = first.map((view) => view.run.key)
      const scope = yield* Scope.make()
      yield* Layer.buildWithScope(layerActionsWorker(executor, { concurrency: 1 }), scope)
      yield* eventually("two are delivered", Effect.map(Effect.forEach(keys, (key) => outboxOf(key)), (lists) =>
        lists.filter((list) => list[0]?.state === "delivered").length >= 2))
      yield* Scope.close(scope, Exit.void)
      const left = yield* Effect.forEach(keys, (key) => outboxOf(key))
      expect(left.filter((list) => list[0]?.state === "pending").length).toBeGreaterThan(0)

      const more = yield* Effect.forEach([6, 7], (i) => runs.create(createRequest(`restart-${i}`)))
      const all = [...keys, ...more.map((view) => view.run.key)]
      yield* Layer.build(layerActionsWorker(executor))
      yield* eventually("every request is delivered", allSettled(all))
      for (const key of all) expect(states(yield* outboxOf(key))).toEqual(["enqueue:delivered"])
      const received = new Set(executor.calls.filter((call) => call.answer === "ok").map((call) => call.key))
      expect([...received].sort()).toEqual(all.map((key) => `${key.project}/${key.domain}/${key.name}/a0`).sort())
    })))

  it.live("an executor that is down and comes back receives every pending request, once each, in order per run", () =>
    provided(Effect.gen(function*() {
      const executor = yield* makeTestExecutor
      const proxy = yield* makeTcpProxy({ host: "127.0.0.1", port: Number(new URL(executor.url).port) })
      yield* proxy.cut
      const runs = yield* Runs
      const views = yield* Effect.forEach([1, 2, 3], (i) => runs.create(createRequest(`outage-${i}`)))
      yield* runs.abortRun(views[0]!.run.key, "first")
      yield* runs.abortRun(views[2]!.run.key, "third")
      yield* Layer.build(layerActionsWorker({ ...executor, url: `http://127.0.0.1:${proxy.port}` }))
      const keys = views.map((view) => view.run.key)
      const triedTwice = Effect.map(Effect.forEach(keys, (key) => outboxOf(key)), (lists) =>
        lists.every((list) => list[0]!.attempts >= 2))
      yield* eventually("every run's enqueue has failed twice", triedTwice)
      expect(executor.calls).toEqual([])
      yield* proxy.restore
      yield* eventually("every request is delivered", allSettled(keys))
      const received = executor.calls.map((call) => `${call.key.split("/")[2]}:${call.kind}`)
      expect(received.filter((call) => call.startsWith("outage-1"))).toEqual(["outage-1:enqueue", "outage-1:abort"])
      expect(received.filter((call) => call.startsWith("outage-2"))).toEqual(["outage-2:enqueue"])
      expect(received.filter((call) => call.startsWith("outage-3"))).toEqual(["outage-3:enqueue", "outage-3:abort"])
      expect((yield* outboxOf(keys[0]!))[0]?.lastError).toMatch(/^Unavailable: /)
    })))

  it.live("an outcome that cannot be written while the database is away is written when it is back, not delivered again", () =>
    provided(Effect.gen(function*() {
      const executor = yield* makeTestExecutor
      // The first writes of an outcome fail as they do while Postgres restarts.
      let failures = 3
      const restarting = Layer.effect(
        Outbox,
        Effect.map(Outbox, (outbox) =>
          Outbox.of({
            ...outbox,
            delivered: (claim, at) =>
              failures-- > 0 ? Effect.fail(new OutboxUnavailable({ reason: "the database is restarting" })) : outbox.delivered(claim, at)
          }))
      )
      yield* Layer.build(layerActionsWorker(executor).pipe(Layer.provide(restarting)))
      const view = yield* Effect.flatMap(Runs, (runs) => runs.create(createRequest("outcome-later")))
      yield* eventually("the enqueue is recorded as delivered", allSettled([view.run.key]))
      expect(failures).toBeLessThan(0)
      expect(states(yield* outboxOf(view.run.key))).toEqual(["enqueue:delivered"])
      expect(executor.calls.map((call) => call.answer)).toEqual(["ok"])
    })))

  it.live("a round whose runs cannot be read is retried, each request with the database's error, and then delivered", () =>
    provided(Effect.gen(function*() {
      const executor = yield* makeTestExecutor
      // The first read of a round's runs fails as it does while Postgres restarts.
      let failures = 1
      const restarting = Layer.effect(
        RunStore,
        Effect.map(RunStore, (store) =>
          RunStore.of({
            ...store,
            getRuns: (keys) =>
              failures-- > 0 ? Effect.fail(new StoreUnavailable({ reason: "the database is restarting" })) : store.getRuns(keys)
          }))
      )
      const runs = yield* Runs
      const views = yield* Effect.forEach(["unread-1", "unread-2"], (name) => runs.create(createRequest(name)))
      yield* Layer.build(layerActionsWorker(executor).pipe(Layer.provide(restarting)))
      const keys = views.map((view) => view.run.key)
      yield* eventually("both enqueues are recorded as delivered", allSettled(keys))
      expect(failures).toBeLessThan(0)
      for (const key of keys) {
        const [request] = yield* outboxOf(key)
        expect(request).toMatchObject({ state: "delivered", attempts: 2, lastError: "database: the database is restarting" })
      }
      expect(executor.calls.map((call) => call.answer)).toEqual(["ok", "ok"])
    })))

  it.live("a request still failing after dispatchMaxAge is marked failed and logged once, with run, kind and error", () =>
    provided(Effect.gen(function*() {
      const executor = yield* makeTestExecutor
      executor.behavior.failNext = 1_000
      const log = capturingLogger()
      yield* Layer.build(layerActionsWorker(executor, { maxAge: "300 millis" }).pipe(Layer.provide(log.layer)))
      const view = yield* Effect.flatMap(Runs, (runs) => runs.create(createRequest("doomed")))
      yield* eventually("the request gives up", allSettled([view.run.key]))
      const [request] = yield* outboxOf(view.run.key)
      expect(request).toMatchObject({ state: "failed", lastError: "Unavailable: executor says Unavailable" })
      expect(request!.attempts).toBeGreaterThan(1)
      const warnings = log.lines.filter((line) => line.level === "WARN")
      expect(warnings).toHaveLength(1)
      expect(warnings[0]!.message).toContain("gave up on enqueue of flytesnacks/development/doomed/a0")
      expect(warnings[0]!.message).toContain("Unavailable: executor says Unavailable")
    })))

  it.live("nothing is claimed before the schema is migrated; pending requests go out once it is", () =>
    provided(Effect.gen(function*() {
      const executor = yield* makeTestExecutor
      const notReady = yield* Ref.make(true)
      const gate = Layer.succeed(Readiness, {
        migrated: Effect.flatMap(Ref.get(notReady), (waiting) =>
          waiting ? new NotReady({ reason: "not yet" }) : Effect.void),
        check: Effect.void
      })
      yield* Layer.build(layerWorker(ActionsDispatcher.layer({ url: executor.url, timeout: "2 seconds" }), {}, gate))
      const view = yield* Effect.flatMap(Runs, (runs) => runs.create(createRequest("waits")))
      // Several poll intervals pass with nothing claimed.
      yield* Effect.sleep("150 millis")
      expect((yield* outboxOf(view.run.key))[0]?.attempts).toBe(0)
      yield* Ref.set(notReady, false)
      yield* eventually("the enqueue is delivered", allSettled([view.run.key]))
      expect(executor.calls).toHaveLength(1)
    })))

  it.live("with the `none` dispatcher every request is logged and marked delivered", () =>
    provided(Effect.gen(function*() {
      const log = capturingLogger()
      yield* Layer.build(layerWorker(LoggingDispatcher.layer).pipe(Layer.provide(log.layer)))
      const runs = yield* Runs
      const view = yield* runs.create(createRequest("nowhere"))
      yield* runs.abortRun(view.run.key, undefined)
      yield* eventually("both requests are delivered", allSettled([view.run.key]))
      expect(states(yield* outboxOf(view.run.key))).toEqual(["enqueue:delivered", "abort:delivered"])
      const lines = log.lines.map((line) => line.message).filter((message) => message.startsWith("dispatch (none)"))
      expect(lines).toEqual([
        "dispatch (none): enqueue flytesnacks/development/nowhere/a0",
        "dispatch (none): abort flytesnacks/development/nowhere/a0"
      ])
    })))
})
