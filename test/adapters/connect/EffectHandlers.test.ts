import { create, equals, toBinary } from "@bufbuild/protobuf"
import { Code, ConnectError, createClient, createRouterTransport, type ServiceImpl } from "@connectrpc/connect"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Option, Ref, Stream } from "effect"
import { ActionPhase } from "#gen/flyteidl2/common/phase_pb.js"
import { RunDetailsSchema } from "#gen/flyteidl2/workflow/run_definition_pb.js"
import { GetRunDetailsResponseSchema, RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import { type EffectHandlers, makeEffectHandlers } from "../../../src/adapters/connect/EffectHandlers.js"
import { NotReady } from "../../../src/ports/Readiness.js"
import { makeRecordingTracer, type RecordedSpan } from "../../support/RecordingTracer.js"

const runId = { org: "", project: "p", domain: "d", name: "r1" }
const details = { details: create(RunDetailsSchema, {}) }

const codeOf = (error: unknown) => (error instanceof ConnectError ? error.code : undefined)

const failure = (promise: Promise<unknown>) =>
  Effect.promise(() => promise.then(() => undefined, (error: unknown) => error))

/** A RunService client over the bridge, in memory, with the methods `implement` gives. */
const makeClient = (
  implement: (handlers: EffectHandlers<never>) => Partial<ServiceImpl<typeof RunService>>,
  gate: Effect.Effect<void, unknown> = Effect.void,
  useBinaryFormat = true
) =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    const shuttingDown = yield* Deferred.make<void>()
    const handlers = makeEffectHandlers({ runtime, shuttingDown, gate })
    const transport = createRouterTransport((router) => {
      router.service(RunService, handlers.service(RunService, implement(handlers)))
    }, { transport: { useBinaryFormat } })
    return { client: createClient(RunService, transport), shuttingDown }
  })

describe("EffectHandlers", () => {
  it.live("answers Unimplemented, naming the method, for a method not served yet", () =>
    Effect.gen(function*() {
      const { client } = yield* makeClient(() => ({}))
      const error = yield* failure(client.getRunDetails({ runId }))
      expect(codeOf(error)).toBe(Code.Unimplemented)
      expect(String(error)).toContain("flyteidl2.workflow.RunService/GetRunDetails is not served yet")
    }))

  it.live("validates requests before the handler, relaxing the org rule real clients break", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const { client } = yield* makeClient((handlers) => ({
        getRunDetails: handlers.unary(RunService.method.getRunDetails, () =>
          Effect.as(Ref.update(calls, (n) => n + 1), details))
      }))
      yield* Effect.promise(() => client.getRunDetails({ runId }))
      expect(yield* Ref.get(calls)).toBe(1)
      const missing = yield* failure(client.getRunDetails({}))
      expect(codeOf(missing)).toBe(Code.InvalidArgument)
      expect(String(missing)).toContain("run_id")
      const badName = yield* failure(client.getRunDetails({ runId: { ...runId, name: "" } }))
      expect(codeOf(badName)).toBe(Code.InvalidArgument)
      expect(String(badName)).toContain("run_id.name")
      expect(yield* Ref.get(calls)).toBe(1)
    }))

  it.live("answers binary and JSON clients alike, unary and streamed, leaving the handler's message as it was", () =>
    Effect.gen(function*() {
      const runDetails = create(RunDetailsSchema, {
        action: {
          id: { run: runId, name: "a0" },
          attempts: [1, 2, 3].map((attempt) => ({
            attempt,
            phaseTransitions: [{ phase: ActionPhase.RUNNING, startTime: { seconds: BigInt(attempt), nanos: 7 } }],
            clusterEvents: [{ message: `pulled é ${"x".repeat(200)}` }]
          }))
        }
      })
      const answer = create(GetRunDetailsResponseSchema, { details: runDetails })
      const before = toBinary(GetRunDetailsResponseSchema, answer)
      const implement = (handlers: EffectHandlers<never>) => ({
        getRunDetails: handlers.unary(RunService.method.getRunDetails, () => Effect.succeed(answer)),
        watchRunDetails: handlers.serverStream(RunService.method.watchRunDetails, () =>
          Stream.make({ details: runDetails }, { details: runDetails }))
      })
      for (const binary of [true, false]) {
        const { client } = yield* makeClient(implement, Effect.void, binary)
        const got = yield* Effect.promise(() => client.getRunDetails({ runId }))
        expect(equals(GetRunDetailsResponseSchema, got, answer)).toBe(true)
        const streamed = yield* Effect.promise(async () => {
          const messages = []
          for await (const message of client.watchRunDetails({ runId })) messages.push(message)
          return messages
        })
        expect(streamed.map((message) => equals(RunDetailsSchema, message.details!, runDetails))).toEqual([true, true])
      }
      expect(toBinary(GetRunDetailsResponseSchema, answer)).toEqual(before)
    }))

  it.live("maps a defect to Internal with a request id and no detail", () =>
    Effect.gen(function*() {
      const { client } = yield* makeClient((handlers) => ({
        getRunDetails: handlers.unary(RunService.method.getRunDetails, () =>
          Effect.die(new Error("SELECT * FROM runs failed at /srv/secret.ts")))
      }))
      const error = yield* failure(client.getRunDetails({ runId }))
      expect(codeOf(error)).toBe(Code.Internal)
      expect(String(error)).toMatch(/internal error \(request id [0-9a-f-]+\)/)
      expect(String(error)).not.toContain("SELECT")
      expect(String(error)).not.toContain("secret")
    }))

  it.live("maps tagged failures to their codes", () =>
    Effect.gen(function*() {
      const { client } = yield* makeClient(() => ({}), Effect.fail(new NotReady({ reason: "migrations pending" })))
      const error = yield* failure(client.listRuns({ scopeBy: { case: "org", value: "o" } }))
      expect(codeOf(error)).toBe(Code.Unavailable)
      expect(String(error)).toContain("migrations pending")
    }))

  it.live("interrupts a server stream when the client cancels", () =>
    Effect.gen(function*() {
      const released = yield* Deferred.make<void>()
      const { client } = yield* makeClient((handlers) => ({
        watchRunDetails: handlers.serverStream(RunService.method.watchRunDetails, () =>
          Stream.concat(Stream.make(details), Stream.never).pipe(Stream.ensuring(Deferred.succeed(released, undefined))))
      }))
      const abort = new AbortController()
      const stream = client.watchRunDetails({ runId }, { signal: abort.signal })
      const first = yield* Effect.promise(() => stream[Symbol.asyncIterator]().next())
      expect(first.done).toBe(false)
      abort.abort()
      yield* Deferred.await(released).pipe(Effect.timeout("5 seconds"))
    }))

  it.live("ends open streams with Unavailable when the server shuts down", () =>
    Effect.gen(function*() {
      const { client, shuttingDown } = yield* makeClient((handlers) => ({
        watchRunDetails: handlers.serverStream(RunService.method.watchRunDetails, () =>
          Stream.concat(Stream.make(details), Stream.never))
      }))
      const iterator = client.watchRunDetails({ runId })[Symbol.asyncIterator]()
      yield* Effect.promise(() => iterator.next())
      const rest = yield* Effect.fork(failure(iterator.next()))
      yield* Deferred.succeed(shuttingDown, undefined)
      const error = yield* Fiber.join(rest)
      expect(codeOf(error)).toBe(Code.Unavailable)
    }))

  it.live("a stream's failure reaches the client with its code", () =>
    Effect.gen(function*() {
      const { client } = yield* makeClient(() => ({}))
      const error = yield* failure((async () => {
        for await (const _ of client.watchRunDetails({ runId })) void _
      })())
      expect(codeOf(error)).toBe(Code.Unimplemented)
    }))

  describe("a stream's span", () => {
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736"
    const callerSpanId = "00f067aa0ba902b7"
    const traced = { headers: { traceparent: `00-${traceId}-${callerSpanId}-01` } }
    const watchRunDetails = "flyteidl2.workflow.RunService/WatchRunDetails"
    const parentOf = (span: RecordedSpan) => Option.getOrUndefined(span.parent)?.spanId

    it.live("continues the caller's trace, holds the stream's work, and ends when the stream completes", () =>
      Effect.gen(function*() {
        const recording = makeRecordingTracer()
        const { client } = yield* makeClient((handlers) => ({
          watchRunDetails: handlers.serverStream(RunService.method.watchRunDetails, () =>
            Stream.concat(Stream.fromEffect(Effect.withSpan(Effect.succeed(details), "Snapshot.read")), Stream.make(details)))
        })).pipe(Effect.withTracer(recording.tracer))
        const messages = yield* Effect.promise(async () => {
          let count = 0
          for await (const _ of client.watchRunDetails({ runId }, traced)) count++
          return count
        })
        expect(messages).toBe(2)
        const span = yield* recording.ended(watchRunDetails)
        expect([span.traceId, parentOf(span), span.kind]).toEqual([traceId, callerSpanId, "server"])
        expect(Object.fromEntries(span.attributes)).toEqual({
          "rpc.system": "connect_rpc",
          "rpc.service": "flyteidl2.workflow.RunService",
          "rpc.method": "WatchRunDetails"
        })
        expect(span.status._tag === "Ended" && Exit.isSuccess(span.status.exit)).toBe(true)
        const read = recording.spans.find((candidate) => candidate.name === "Snapshot.read")
        expect(read === undefined ? undefined : parentOf(read)).toBe(span.spanId)
      }))

    it.live("ends as interrupted, with the code Canceled, when the client cancels", () =>
      Effect.gen(function*() {
        const recording = makeRecordingTracer()
        const { client } = yield* makeClient((handlers) => ({
          watchRunDetails: handlers.serverStream(RunService.method.watchRunDetails, () =>
            Stream.concat(Stream.make(details), Stream.never))
        })).pipe(Effect.withTracer(recording.tracer))
        const abort = new AbortController()
        const iterator = client.watchRunDetails({ runId }, { ...traced, signal: abort.signal })[Symbol.asyncIterator]()
        yield* Effect.promise(() => iterator.next())
        expect(recording.spans.find((span) => span.name === watchRunDetails)?.status._tag).toBe("Started")
        abort.abort()
        const span = yield* recording.ended(watchRunDetails)
        expect(span.attributes.get("rpc.connect_rpc.error_code")).toBe("canceled")
        expect(span.status._tag === "Ended" && Exit.isInterrupted(span.status.exit)).toBe(true)
      }))

    it.live("ends as failed, with the code the client is answered", () =>
      Effect.gen(function*() {
        const recording = makeRecordingTracer()
        const { client } = yield* makeClient(() => ({})).pipe(Effect.withTracer(recording.tracer))
        const error = yield* failure((async () => {
          for await (const _ of client.watchRunDetails({ runId }, traced)) void _
        })())
        expect(codeOf(error)).toBe(Code.Unimplemented)
        const span = yield* recording.ended(watchRunDetails)
        expect(span.attributes.get("rpc.connect_rpc.error_code")).toBe("unimplemented")
        expect(span.status._tag === "Ended" && Exit.isFailure(span.status.exit) && !Exit.isInterrupted(span.status.exit))
          .toBe(true)
      }))

    it.live("is not made when the tracer is off", () =>
      Effect.gen(function*() {
        const recording = makeRecordingTracer()
        const { client } = yield* makeClient((handlers) => ({
          watchRunDetails: handlers.serverStream(RunService.method.watchRunDetails, () =>
            Stream.fromEffect(Effect.withSpan(Effect.succeed(details), "Snapshot.read")))
        })).pipe(Effect.withTracer(recording.tracer), Effect.withTracerEnabled(false))
        yield* Effect.promise(async () => {
          for await (const _ of client.watchRunDetails({ runId }, traced)) void _
        })
        expect(recording.spans).toEqual([])
      }))
  })
})
