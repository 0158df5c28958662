import { create, equals } from "@bufbuild/protobuf"
import { Code } from "@connectrpc/connect"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { RunSpecSchema } from "#gen/flyteidl2/task/run_pb.js"
import { TaskSpecSchema } from "#gen/flyteidl2/task/task_definition_pb.js"
import * as ActionsDispatcher from "../../src/adapters/dispatch/ActionsDispatcher.js"
import { toPayload } from "../../src/adapters/connect/ProtoCodec.js"
import { type AbortRequest, Dispatcher, type EnqueueRequest } from "../../src/ports/Dispatcher.js"
import { taskSpec } from "../support/RunRequests.js"
import { makeTestExecutor, type TestExecutor } from "../support/TestExecutor.js"

const action = { run: { project: "proj", domain: "development", name: "r1" }, name: "a0" }
const runSpec = create(RunSpecSchema, { cluster: "c1", rawDataStorage: { rawDataPrefix: "s3://raw" } })

const enqueue: EnqueueRequest = {
  action,
  org: "acme",
  task: { org: "acme", project: "proj", domain: "development", name: "hello.main", version: "v1" },
  taskSpec: toPayload(TaskSpecSchema, taskSpec()),
  inputUri: "s3://bucket/proj/development/r1/inputs",
  runOutputBase: "s3://bucket/proj/development/r1/",
  runSpec: toPayload(RunSpecSchema, runSpec)
}
const abort: AbortRequest = { action, org: "acme", reason: "stop" }

const withDispatcher = <A, E>(f: (dispatcher: Dispatcher["Type"], executor: TestExecutor) => Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const executor = yield* makeTestExecutor
    const context = yield* Layer.build(ActionsDispatcher.layer({ url: executor.url, timeout: "2 seconds" }))
    return yield* f(Context.get(context, Dispatcher), executor)
  }).pipe(Effect.scoped)

describe("ActionsDispatcher", () => {
  it.live("a call carries the delivery's trace as a W3C traceparent, and none when spans are not recorded", () =>
    withDispatcher((dispatcher, executor) =>
      Effect.gen(function*() {
        const traceId = yield* Effect.withSpan(
          Effect.zipRight(dispatcher.enqueue(enqueue), Effect.map(Effect.currentSpan, (span) => span.traceId)),
          "OutboxWorker.deliver"
        )
        yield* dispatcher.abort(abort).pipe(Effect.withSpan("OutboxWorker.deliver"), Effect.withTracerEnabled(false))
        const [traced, untraced] = executor.calls
        expect(traced?.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`))
        expect(untraced?.traceparent).toBeNull()
      })
    ))

  it.live("Enqueue carries the action id, URIs, task and run spec, over gRPC", () =>
    withDispatcher((dispatcher, executor) =>
      Effect.gen(function*() {
        yield* dispatcher.enqueue(enqueue)
        const [call] = executor.calls
        if (call?.kind !== "enqueue") return expect.fail("expected an enqueue")
        expect(call.contentType).toMatch(/^application\/grpc/)
        const sent = call.request
        expect(sent.action?.actionId).toMatchObject({ run: { org: "acme", ...action.run }, name: "a0" })
        expect(sent.action?.inputUri).toBe(enqueue.inputUri)
        expect(sent.action?.runOutputBase).toBe(enqueue.runOutputBase)
        expect(sent.action?.group).toBe("")
        if (sent.action?.spec.case !== "task") return expect.fail("expected a task")
        expect(sent.action.spec.value.id).toMatchObject(enqueue.task!)
        expect(sent.action.spec.value.cacheKey).toBe("")
        expect(equals(TaskSpecSchema, sent.action.spec.value.spec!, taskSpec())).toBe(true)
        expect(equals(RunSpecSchema, sent.runSpec!, runSpec)).toBe(true)
      })))

  it.live("AlreadyExists on Enqueue counts as delivered; other codes fail with the code and message", () =>
    withDispatcher((dispatcher, executor) =>
      Effect.gen(function*() {
        executor.behavior.enqueueAnswer = Code.AlreadyExists
        yield* dispatcher.enqueue(enqueue)
        executor.behavior.enqueueAnswer = Code.InvalidArgument
        const error = yield* Effect.flip(dispatcher.enqueue(enqueue))
        expect(error).toMatchObject({ _tag: "DispatchFailed", message: "InvalidArgument: executor says InvalidArgument" })
        executor.behavior.enqueueAnswer = undefined
        executor.behavior.failNext = 1
        expect((yield* Effect.flip(dispatcher.enqueue(enqueue))).message).toBe("Unavailable: executor says Unavailable")
        expect(executor.calls.map((call) => call.answer)).toEqual([
          Code.AlreadyExists,
          Code.InvalidArgument,
          Code.Unavailable
        ])
      })))

  it.live("Abort carries the reason; NotFound, or Internal saying not found, counts as delivered", () =>
    withDispatcher((dispatcher, executor) =>
      Effect.gen(function*() {
        yield* dispatcher.abort(abort)
        const [call] = executor.calls
        expect(call?.kind === "abort" ? call.request.reason : undefined).toBe("stop")
        expect(call?.kind === "abort" ? call.request.actionId?.run?.org : undefined).toBe("acme")
        executor.behavior.abortAnswer = { code: Code.NotFound, message: "no such action" }
        yield* dispatcher.abort(abort)
        executor.behavior.abortAnswer = { code: Code.Internal, message: `taskactions "r1-a0" not found` }
        yield* dispatcher.abort(abort)
        executor.behavior.abortAnswer = { code: Code.Internal, message: "etcd is down" }
        expect((yield* Effect.flip(dispatcher.abort(abort))).message).toBe("Internal: etcd is down")
        expect(executor.calls).toHaveLength(4)
      })))

  it.live("an executor that is not listening is a DispatchFailed saying Unavailable", () =>
    Effect.gen(function*() {
      const url = yield* Effect.map(makeTestExecutor, (executor) => executor.url).pipe(Effect.scoped)
      const context = yield* Layer.build(ActionsDispatcher.layer({ url, timeout: "2 seconds" }))
      const dispatcher = Context.get(context, Dispatcher)
      const error = yield* Effect.flip(dispatcher.enqueue(enqueue))
      expect(error.message).toMatch(/^Unavailable: /)
    }).pipe(Effect.scoped))

  it("logs the executor's URL without credentials", () => {
    expect(ActionsDispatcher.describeUrl("http://user:secret@executor:8090")).toBe("http://executor:8090")
    expect(ActionsDispatcher.describeUrl("not a url")).toBe("(an invalid URL)")
  })
})
