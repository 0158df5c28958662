import { create } from "@bufbuild/protobuf"
import { Code, ConnectError, createClient } from "@connectrpc/connect"
import { createGrpcTransport } from "@connectrpc/connect-node"
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { ActionPhase } from "#gen/flyteidl2/common/phase_pb.js"
import {
  InternalRunService,
  RecordActionEventStreamRequestSchema,
  UpdateActionStatusStreamRequestSchema
} from "#gen/flyteidl2/workflow/internal_run_service_pb.js"
import * as MemoryRunStore from "../../src/adapters/memory/MemoryRunStore.js"
import * as SqlRunStore from "../../src/adapters/sql/SqlRunStore.js"
import { backends, describeBackends } from "../support/backends.js"
import { createNamed, project } from "../support/RunRequests.js"
import { baseUrl, layerTestServer } from "../support/TestApp.js"
import { actionId, call, clients, runId } from "../watch/WatchSupport.js"

/**
 * Values a valid-looking request can carry that the service cannot hold (#26): each is refused with
 * InvalidArgument (in-band code 3 for executors) naming the field, and nothing already stored changes.
 */

const rejection = (promise: Promise<unknown>) =>
  Effect.promise(() => promise.then(() => undefined, (error: unknown) => ConnectError.from(error)))

const child = (run: string, name: string) => ({
  actionId: actionId(run, name),
  parent: "a0",
  spec: { case: "task" as const, value: { id: { org: "", project: project.name, domain: project.domain, name: "wf.t", version: "v1" } } }
})

const VALUE_IN = 7

/** A phase number the enum does not have, as a client on the wire can send one. */
const outOfRange = (n: number) => n as ActionPhase

describeBackends("bad input", backends({ memory: MemoryRunStore.layer, sql: SqlRunStore.layer }), (backend) => {
  const server = () => layerTestServer(backend.layer)

  it.effect("a phase number outside ActionPhase, or an attempt number past 2^31 - 1, is refused naming the field, on every ingestion procedure", () =>
    Effect.gen(function*() {
      const { internal, runs } = yield* clients
      const grpc = createClient(InternalRunService, createGrpcTransport({ baseUrl: yield* baseUrl }))
      yield* call(() => runs.createRun(createNamed("phases")))
      yield* call(() => internal.recordAction(child("phases", "c1")))

      const update = yield* call(() => internal.updateActionStatus({ actionId: actionId("phases", "c1"), status: { phase: outOfRange(9999), attempts: 1 } }))
      expect(update.status?.code).toBe(3)
      expect(update.status?.message).toContain("status.phase: 9999 is not an ActionPhase")

      const answers = yield* call(async () => {
        const out: Array<{ code: number; message: string }> = []
        const statuses = grpc.updateActionStatusStream((async function*() {
          yield create(UpdateActionStatusStreamRequestSchema, { request: { actionId: actionId("phases", "c1"), status: { phase: outOfRange(42) } }, nonce: 1n })
        })())
        for await (const item of statuses) out.push({ code: item.response!.status!.code, message: item.response!.status!.message })
        const events = grpc.recordActionEventStream((async function*() {
          yield create(RecordActionEventStreamRequestSchema, { request: { event: { id: actionId("phases", "c1"), attempt: 1, phase: outOfRange(9999) } }, nonce: 2n })
        })())
        for await (const item of events) out.push({ code: item.response!.status!.code, message: item.response!.status!.message })
        return out
      })
      expect(answers.map((answer) => answer.code)).toEqual([3, 3])
      expect(answers[0]!.message).toContain("status.phase: 42")
      expect(answers[1]!.message).toContain("phase: 9999")

      const trace = yield* call(() =>
        internal.recordAction({ actionId: actionId("phases", "t1"), parent: "a0", spec: { case: "trace", value: { name: "step", phase: outOfRange(9999) } } })
      )
      expect(trace.status?.code).toBe(3)
      expect(trace.status?.message).toContain("trace.phase")

      const attempts = yield* call(() => internal.updateActionStatus({ actionId: actionId("phases", "c1"), status: { phase: 4, attempts: 4_294_967_295 } }))
      expect(attempts.status?.code).toBe(3)
      expect(attempts.status?.message).toContain("status.attempts: 4294967295 is past the largest attempt number")
      const eventAttempt = yield* call(() => internal.recordActionEvents({ events: [{ id: actionId("phases", "c1"), attempt: 2_147_483_648, phase: 4 }] }))
      expect(eventAttempt.status?.code).toBe(3)
      expect(eventAttempt.status?.message).toContain("attempt: 2147483648 is past")
      const logContext = yield* rejection(runs.getActionLogContext({ actionId: actionId("phases", "c1"), attempt: 4_294_967_295 }))
      expect(logContext?.code).toBe(Code.InvalidArgument)

      const details = yield* call(() => runs.getActionDetails({ actionId: actionId("phases", "c1") }))
      expect(details.details?.status?.phase).toBe(1)
    }).pipe(Effect.provide(server())))

  it.effect("times outside the calendar and durations with mixed signs are refused naming the field; the valid events of a batch are kept", () =>
    Effect.gen(function*() {
      const { internal, runs } = yield* clients
      yield* call(() => runs.createRun(createNamed("times")))
      yield* call(() => internal.recordAction(child("times", "c1")))
      const id = actionId("times", "c1")
      const answer = yield* call(() =>
        internal.recordActionEvents({
          events: [
            { id, attempt: 1, phase: 3, version: 0, updatedTime: { seconds: 9_000_000_000_000n } },
            { id, attempt: 1, phase: 4, version: 1, logInfo: [{ name: "pod", uri: "u", ttl: { seconds: 1n, nanos: -1 } }] },
            { id, attempt: 1, phase: 4, version: 2, reportedTime: { seconds: 1_700_000_000n, nanos: -5 } },
            { id, attempt: 1, phase: 4, version: 3, updatedTime: { seconds: 1_700_000_100n } }
          ]
        })
      )
      expect(answer.status?.code).toBe(3)
      expect(answer.status?.message).toContain("3 of 4 events were invalid")
      expect(answer.status?.message).toContain("events[0]: invalid ActionEvent: updated_time: seconds 9000000000000")
      expect(answer.status?.message).toContain("events[1]: invalid ActionEvent: log_info[0].ttl: seconds 1 and nanos -1 have different signs")
      expect(answer.status?.message).toContain("events[2]: invalid ActionEvent: reported_time: nanos -5")
      const details = yield* call(() => runs.getActionDetails({ actionId: id }))
      expect(details.details?.attempts.map((attempt) => attempt.phaseTransitions.map((t) => t.phase))).toEqual([[4]])

      const groups = yield* rejection((async () => {
        for await (const _ of runs.watchGroups({ scopeBy: { case: "projectId", value: project }, startDate: { seconds: 9_000_000_000_000n } })) break
      })())
      expect(groups?.code).toBe(Code.InvalidArgument)
      expect(groups?.rawMessage).toContain("start_date: seconds 9000000000000")
    }).pipe(Effect.provide(server())))

  it.effect("a string holding U+0000 (PostgreSQL's text and JSONB cannot) is refused naming the field", () =>
    Effect.gen(function*() {
      const { internal, runs } = yield* clients
      yield* call(() => runs.createRun(createNamed("strings")))
      yield* call(() => internal.recordAction(child("strings", "c1")))
      const nul = yield* rejection(runs.getRunDetails({ runId: { ...runId("strings"), org: "a\u0000b" } }))
      expect(nul?.code).toBe(Code.InvalidArgument)
      expect(nul?.rawMessage).toContain("run_id.org: holds the character U+0000")
      const answer = yield* call(() =>
        internal.recordActionEvents({
          events: [{
            id: actionId("strings", "c1"),
            attempt: 1,
            phase: 4,
            clusterEvents: [{ occurredAt: { seconds: 1_700_000_000n }, message: "nul \u0000 inside" }]
          }]
        })
      )
      expect(answer.status?.code).toBe(3)
      expect(answer.status?.message).toContain("cluster_events[0].message: holds the character U+0000")
      const details = yield* call(() => runs.getActionDetails({ actionId: actionId("strings", "c1") }))
      expect(details.details?.attempts).toEqual([])
    }).pipe(Effect.provide(server())))

  it.effect("a list with too many filters or values is InvalidArgument, and a huge value is not echoed whole", () =>
    Effect.gen(function*() {
      const { runs } = yield* clients
      const filters = Array.from({ length: 2_000 }, () => ({ field: "phase", function: VALUE_IN, values: ["PHASE_QUEUED"] }))
      const many = yield* rejection(runs.listRuns({ request: { filters }, scopeBy: { case: "projectId", value: project } }))
      expect(many?.code).toBe(Code.InvalidArgument)
      expect(many?.rawMessage).toBe("too many filters: 2000, at most 50")
      const values = Array.from({ length: 1_500 }, () => "PHASE_QUEUED")
      const wide = yield* rejection(runs.listRuns({ request: { filters: [{ field: "phase", function: VALUE_IN, values }] }, scopeBy: { case: "projectId", value: project } }))
      expect(wide?.code).toBe(Code.InvalidArgument)
      expect(wide?.rawMessage).toBe("too many filter values: 1500 in all, at most 1000")
      const huge = "x".repeat(50_000)
      const echoed = yield* rejection(runs.listRuns({ request: { filters: [{ field: "created_at", function: 0, values: [huge] }] }, scopeBy: { case: "projectId", value: project } }))
      expect(echoed?.code).toBe(Code.InvalidArgument)
      expect(echoed?.rawMessage).toContain("(49900 more characters)")
      expect(echoed!.rawMessage.length).toBeLessThan(1_000)
    }).pipe(Effect.provide(server())))

  it.effect("a trace without spec is recorded, as the SDK sends it", () =>
    Effect.gen(function*() {
      const { internal, runs } = yield* clients
      yield* call(() => runs.createRun(createNamed("traces")))
      const trace = yield* call(() =>
        internal.recordAction({ actionId: actionId("traces", "t1"), parent: "a0", spec: { case: "trace", value: { name: "step", phase: 5 } } })
      )
      expect(trace.status?.code).toBe(0)
      const details = yield* call(() => runs.getActionDetails({ actionId: actionId("traces", "t1") }))
      expect(details.details?.status?.phase).toBe(5)
    }).pipe(Effect.provide(server())))
})

