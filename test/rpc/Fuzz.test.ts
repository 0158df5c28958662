import {
  create,
  type DescMessage,
  type DescMethod,
  fromBinary,
  fromJsonString,
  type MessageInitShape,
  type MessageShape
} from "@bufbuild/protobuf"
import { reflect } from "@bufbuild/protobuf/reflect"
import { expect, it } from "@effect/vitest"
import { Effect, Logger, LogLevel } from "effect"
import * as http2 from "node:http2"
import { InternalRunService } from "#gen/flyteidl2/workflow/internal_run_service_pb.js"
import { RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import * as MemoryRunStore from "../../src/adapters/memory/MemoryRunStore.js"
import * as SqlRunStore from "../../src/adapters/sql/SqlRunStore.js"
import { backends, describeBackends } from "../support/backends.js"
import {
  brokenGzip,
  encodeAs,
  hostileEdit,
  mutateBytes,
  mutateText,
  nestedGroups,
  nestedJson,
  nestedMessage,
  type Rng,
  seeded
} from "../support/HostileInputs.js"
import { type Protocol, rawCall, type RawAnswer } from "../support/RawRpc.js"
import { createNamed, project } from "../support/RunRequests.js"
import { baseUrl, layerTestServer, serverConfig } from "../support/TestApp.js"
import { call, clients, runId } from "../watch/WatchSupport.js"

/**
 * Every procedure of both services, over Connect binary, Connect JSON and gRPC, fed random bytes, valid
 * requests with bytes changed, hostile values in valid shapes, nesting past any stack and broken compression.
 * No answer may be `internal` or `unknown`, on the wire or in an InternalRunService status, and the service
 * must still answer afterwards. `FUZZ_CASES` sets the cases per procedure, `FUZZ_SEED` the seed.
 */

const casesPerProcedure = Number(process.env["FUZZ_CASES"] ?? 100)
const seed = Number(process.env["FUZZ_SEED"] ?? 20_261_207)

const run = runId("fuzz")
const action = { run, name: "c1" }
const projectId = { organization: "", name: project.name, domain: project.domain }
const taskAction = (name: string) => ({
  actionId: { run, name },
  parent: "a0",
  spec: { case: "task" as const, value: { id: { ...projectId, org: "", project: project.name, name: "wf.t", version: "v1" } } }
})
const event = {
  id: action,
  attempt: 1,
  phase: 4,
  version: 1,
  updatedTime: { seconds: 1_700_000_000n },
  logInfo: [{ name: "pod", uri: "https://logs/c1", ttl: { seconds: 60n } }],
  clusterEvents: [{ occurredAt: { seconds: 1_700_000_000n }, message: "Pulling image" }]
}

/** A valid request of each procedure, about the seeded run: what mutations start from. */
const seeds: Record<string, MessageInitShape<DescMessage>> = {
  createRun: createNamed("fuzz-new"),
  abortRun: { runId: run, reason: "fuzz" },
  getRunDetails: { runId: run },
  watchRunDetails: { runId: run },
  getActionDetails: { actionId: action },
  watchActionDetails: { actionId: action },
  getActionData: { actionId: action },
  getActionDataURIs: { actionId: action },
  getActionLogContext: { actionId: action, attempt: 1 },
  listRuns: {
    request: { limit: 10, filters: [{ field: "phase", function: 7, values: ["PHASE_RUNNING"] }] },
    scopeBy: { case: "projectId", value: projectId }
  },
  watchRuns: { target: { case: "projectId", value: projectId } },
  listActions: { runId: run, request: { limit: 10 } },
  watchActions: { runId: run, filter: [{ field: "phase", function: 7, values: ["PHASE_RUNNING"] }] },
  watchClusterEvents: { id: action, attempt: 1 },
  abortAction: { actionId: action, reason: "fuzz" },
  watchGroups: { scopeBy: { case: "projectId", value: projectId }, startDate: { seconds: 1_700_000_000n }, request: { limit: 10 } },
  recordAction: taskAction("c2"),
  recordActionStream: { request: taskAction("c3") },
  updateActionStatus: { actionId: action, status: { phase: 4, attempts: 1 } },
  updateActionStatusStream: { request: { actionId: action, status: { phase: 4, attempts: 1 } }, nonce: 1n },
  recordActionEvents: { events: [event] },
  recordActionEventStream: { request: { event }, nonce: 1n }
}

const methods: ReadonlyArray<DescMethod> = [...RunService.methods, ...InternalRunService.methods]

interface Case {
  readonly kind: string
  readonly protocol: Protocol
  readonly body: Uint8Array
  readonly compression?: "gzip" | "flag-only"
}

const encoder = new TextEncoder()

/** One case for `method`: its kind chosen at random, then its bytes. */
const makeCase = (rng: Rng, method: DescMethod, protocol: Protocol): Case => {
  const json = protocol === "connect-json"
  const valid = create(method.input, seeds[method.localName] ?? {})
  const validBytes = encodeAs(json, method.input, valid)!
  switch (rng.int(7)) {
    case 0:
      return { kind: "random bytes", protocol, body: rng.bytes(rng.int(300)) }
    case 1:
      return {
        kind: "mutated",
        protocol,
        body: json ? encoder.encode(mutateText(rng, new TextDecoder().decode(validBytes))) : mutateBytes(rng, validBytes)
      }
    case 2:
    case 3: {
      const message = reflect(method.input, valid)
      for (let i = 1 + rng.int(3); i > 0; i--) hostileEdit(rng, message)
      const body = encodeAs(json, method.input, message.message as MessageShape<DescMessage>)
      return body === undefined
        ? { kind: "mutated", protocol, body: mutateBytes(rng, validBytes) }
        : { kind: "hostile values", protocol, body }
    }
    case 4: {
      const depth = rng.pick([1_000, 20_000, 60_000])
      if (json) return { kind: `JSON nested ${depth} deep`, protocol, body: encoder.encode(nestedJson(rng.pick(method.input.fields).jsonName, depth)) }
      // A Literal's collection (field 2) holding Literals (field 1), inside CreateRun's inputs (field 4) as a
      // NamedLiteral's value (field 2); or groups in an unknown field of any request.
      const body = method.localName === "createRun" && rng.int(2) === 0
        ? Uint8Array.from([...validBytes, ...nestedMessage(4, [], 0, nestedMessage(1, [], 0, nestedMessage(2, [2, 1], depth / 20, new Uint8Array())))])
        : Uint8Array.from([...validBytes, ...nestedGroups(depth)])
      return { kind: `nested ${depth} deep`, protocol, body }
    }
    case 5:
      return { kind: "broken gzip", protocol, body: brokenGzip(rng, validBytes), compression: "gzip" }
    default:
      return protocol === "connect-json" || !(protocol === "grpc" || method.methodKind !== "unary")
        ? { kind: "broken gzip", protocol, body: brokenGzip(rng, validBytes), compression: "gzip" }
        : { kind: "compressed flag, no encoding", protocol, body: validBytes, compression: "flag-only" }
  }
}

/** The in-band status codes an InternalRunService answer carries (its own, or each stream item's). */
const inBandCodes = (method: DescMethod, protocol: Protocol, answer: RawAnswer): ReadonlyArray<number> => {
  if (method.parent.typeName !== InternalRunService.typeName) return []
  return answer.messages.flatMap((bytes) => {
    try {
      const message = protocol === "connect-json"
        ? fromJsonString(method.output, new TextDecoder().decode(bytes))
        : fromBinary(method.output, bytes)
      const shape = message as { status?: { code: number }; response?: { status?: { code: number } } }
      const status = shape.status ?? shape.response?.status
      return status === undefined ? [] : [status.code]
    } catch {
      return [-1]
    }
  })
}

const refused = new Set(["internal", "unknown"])

describeBackends("fuzz", backends({ memory: MemoryRunStore.layer, sql: SqlRunStore.layer }).filter((backend) => backend.name !== "memory"), (backend) => {
  it.live(`${casesPerProcedure} cases per procedure: no internal or unknown, and the service answers afterwards`, () =>
    Effect.gen(function*() {
      const { internal, runs } = yield* clients
      yield* call(() => runs.createRun(createNamed("fuzz")))
      yield* call(() => internal.recordAction(taskAction("c1")))
      yield* call(() => internal.recordActionEvents({ events: [event] }))
      const url = yield* baseUrl
      const session = yield* Effect.acquireRelease(
        // The client's own session memory is raised: sixteen large bodies at once would pass its default.
        Effect.sync(() => http2.connect(url, { maxSessionMemory: 1_000 })),
        (session) => Effect.sync(() => session.destroy())
      )
      const rng = seeded(seed)
      const protocols: ReadonlyArray<Protocol> = ["connect-proto", "connect-json", "grpc"]
      const failures: Array<string> = []
      const answered: Record<string, number> = {}
      let sent = 0
      for (const method of methods) {
        // Drawn in order (the seed decides every case), sent 16 at a time.
        const drawn = Array.from({ length: casesPerProcedure }, (_, i) => makeCase(rng, method, protocols[i % protocols.length]!))
        yield* Effect.forEach(drawn, (fuzzCase, i) =>
          Effect.promise(() =>
            rawCall(session, {
              path: `/${method.parent.typeName}/${method.name}`,
              protocol: fuzzCase.protocol,
              streaming: method.methodKind !== "unary",
              body: fuzzCase.body,
              ...(fuzzCase.compression === undefined ? {} : { compression: fuzzCase.compression }),
              quietMs: 3_000
            })
          ).pipe(Effect.map((answer) => {
            sent += 1
            answered[answer.code] = (answered[answer.code] ?? 0) + 1
            const codes = inBandCodes(method, fuzzCase.protocol, answer)
            if (refused.has(answer.code) || answer.code.startsWith("http") || codes.some((code) => code === 2 || code === 13 || code < 0)) {
              failures.push(`${method.name} ${fuzzCase.protocol} ${fuzzCase.kind} (case ${i}): ${answer.code} ${codes.join(",")} ${answer.message.slice(0, 200)}`)
            }
          })), { concurrency: 16, discard: true })
      }
      console.log(`fuzz [${backend.name}] seed ${seed}: ${sent} cases answered ${JSON.stringify(answered)}`)
      expect(sent).toBe(methods.length * casesPerProcedure)
      expect(failures.slice(0, 20)).toEqual([])
      // Still serving, with the seeded run intact.
      const details = yield* call(() => runs.getRunDetails({ runId: run }))
      expect(details.details?.action?.id?.name).toBe("a0")
      const children = yield* call(() => runs.listActions({ runId: run, request: { limit: 100 } }))
      expect(children.actions.map((child) => child.id?.name)).toContain("c1")
    }).pipe(
      Effect.scoped,
      Effect.provide(layerTestServer(backend.layer, { server: { ...serverConfig, maxRequestBytes: 4 * 1024 * 1024 } })),
      // Thousands of refused requests, each logged at info: only what is worse shows.
      Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))
    ), 600_000)
})

