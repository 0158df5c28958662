import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect"
import {
  compressionGzip,
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport
} from "@connectrpc/connect-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as http2 from "node:http2"
import { gzipSync } from "node:zlib"
import { RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import * as MemoryRunStore from "../../src/adapters/memory/MemoryRunStore.js"
import { rawCall } from "../support/RawRpc.js"
import { baseUrl, layerTestServer } from "../support/TestApp.js"

const serverLayer = (migrate: Effect.Effect<void> = Effect.void) => layerTestServer(MemoryRunStore.layer, { migrate })

const sdkRunId = { org: "", project: "flytesnacks", domain: "development", name: "r1" }

const transports = (baseUrl: string): Record<string, Transport> => ({
  "Connect binary over HTTP/1.1, gzip (Python SDK)": createConnectTransport({
    baseUrl,
    httpVersion: "1.1",
    sendCompression: compressionGzip,
    compressMinBytes: 0
  }),
  "Connect JSON over HTTP/1.1 (web UI)": createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: false }),
  "Connect over h2c": createConnectTransport({ baseUrl, httpVersion: "2" }),
  "gRPC over h2c": createGrpcTransport({ baseUrl }),
  "gRPC-Web over HTTP/1.1": createGrpcWebTransport({ baseUrl, httpVersion: "1.1" })
})

const rejection = (promise: Promise<unknown>) =>
  Effect.promise(() =>
    promise.then(
      () => undefined,
      (error: unknown) => (error instanceof ConnectError ? error : undefined)
    )
  )


describe("server", () => {
  it.layer(serverLayer())("listening", (it) => {
    it.effect("answers every protocol real clients use, validating first", () =>
      Effect.gen(function*() {
        for (const [name, transport] of Object.entries(transports(yield* baseUrl))) {
          const client = createClient(RunService, transport)
          const served = yield* rejection(client.getRunDetails({ runId: sdkRunId }))
          expect(served?.code, name).toBe(Code.NotFound)
          expect(served?.rawMessage, name).toBe("run flytesnacks/development/r1 not found")
          const invalid = yield* rejection(client.getRunDetails({}))
          expect(invalid?.code, name).toBe(Code.InvalidArgument)
          expect(invalid?.rawMessage, name).toContain("run_id")
        }
      }))

    it.effect("serves /healthz and /readyz over HTTP/1.1", () =>
      Effect.gen(function*() {
        const url = yield* baseUrl
        const health = yield* Effect.promise(() => fetch(`${url}/healthz`))
        expect(health.status).toBe(200)
        expect(yield* Effect.promise(() => health.text())).toBe("OK")
        const ready = yield* Effect.promise(() => fetch(`${url}/readyz`))
        expect(ready.status).toBe(200)
      }))

    it.effect("answers CORS preflights for configured origins only", () =>
      Effect.gen(function*() {
        const url = `${yield* baseUrl}/flyteidl2.workflow.RunService/ListRuns`
        const preflight = (origin: string) =>
          Effect.promise(() =>
            fetch(url, {
              method: "OPTIONS",
              headers: {
                origin,
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type,connect-protocol-version"
              }
            })
          )
        const allowed = yield* preflight("http://ui.example")
        expect(allowed.status).toBe(204)
        expect(allowed.headers.get("access-control-allow-origin")).toBe("http://ui.example")
        expect(allowed.headers.get("access-control-allow-headers")).toContain("Connect-Protocol-Version")
        const other = yield* preflight("http://evil.example")
        expect(other.headers.get("access-control-allow-origin")).toBeNull()
      }))

    it.effect("refuses a request body over the size limit with ResourceExhausted", () =>
      Effect.gen(function*() {
        const client = createClient(RunService, createConnectTransport({ baseUrl: yield* baseUrl, httpVersion: "1.1" }))
        const error = yield* rejection(client.abortRun({ runId: sdkRunId, reason: "x".repeat(100 * 1024) }))
        expect(error?.code).toBe(Code.ResourceExhausted)
      }))

    it.scoped("refuses a gzip bomb (10 MB of zeros in 10 kB) with ResourceExhausted, in Connect and gRPC, without inflating it", () =>
      Effect.gen(function*() {
        const url = yield* baseUrl
        const session = yield* Effect.acquireRelease(Effect.sync(() => http2.connect(url)), (session) => Effect.sync(() => session.destroy()))
        const bomb = gzipSync(new Uint8Array(10 * 1024 * 1024))
        expect(bomb.byteLength).toBeLessThan(20 * 1024)
        for (const protocol of ["connect-proto", "grpc"] as const) {
          const answer = yield* Effect.promise(() =>
            rawCall(session, {
              path: "/flyteidl2.workflow.RunService/GetRunDetails",
              protocol,
              streaming: false,
              body: bomb,
              compression: "gzip",
              quietMs: 0
            })
          )
          expect(answer.code, protocol).toBe("resource_exhausted")
        }
      }))
  })

  it.layer(serverLayer(Effect.never))("before migrations complete", (it) => {
    it.effect("is alive but not ready, and refuses RPCs with Unavailable", () =>
      Effect.gen(function*() {
        const url = yield* baseUrl
        expect((yield* Effect.promise(() => fetch(`${url}/healthz`))).status).toBe(200)
        const ready = yield* Effect.promise(() => fetch(`${url}/readyz`))
        expect(ready.status).toBe(503)
        expect(yield* Effect.promise(() => ready.text())).toContain("migrations")
        const client = createClient(RunService, createGrpcTransport({ baseUrl: url }))
        const error = yield* rejection(client.getRunDetails({ runId: sdkRunId }))
        expect(error?.code).toBe(Code.Unavailable)
      }))
  })
})

describe("response compression", () => {
  const listRuns = (url: string) =>
    Effect.promise(() =>
      fetch(`${url}/flyteidl2.workflow.RunService/ListRuns`, {
        method: "POST",
        headers: { "content-type": "application/json", "accept-encoding": "gzip" },
        body: JSON.stringify({ projectId: { name: "flytesnacks", domain: "development" } })
      })
    )

  it.effect("a response under runs.server.compressMinBytes goes out as it is, even to a client that accepts gzip", () =>
    Effect.gen(function*() {
      const response = yield* listRuns(yield* baseUrl)
      expect(response.status).toBe(200)
      expect(response.headers.get("content-encoding")).toBeNull()
    }).pipe(Effect.provide(layerTestServer(MemoryRunStore.layer))))

  it.effect("at 0, every response is compressed for a client that accepts it", () =>
    Effect.gen(function*() {
      const response = yield* listRuns(yield* baseUrl)
      expect(response.status).toBe(200)
      expect(response.headers.get("content-encoding")).toBe("gzip")
      expect(yield* Effect.promise(() => response.json())).toEqual({})
    }).pipe(Effect.provide(layerTestServer(MemoryRunStore.layer, { compressMinBytes: 0 }))))
})
