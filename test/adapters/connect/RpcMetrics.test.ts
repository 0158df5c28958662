import { create } from "@bufbuild/protobuf"
import { Code, ConnectError, createContextValues, type StreamRequest, type StreamResponse, type UnaryRequest, type UnaryResponse } from "@connectrpc/connect"
import { describe, expect, it } from "vitest"
import { Metric } from "effect"
import { InternalRunService } from "#gen/flyteidl2/workflow/internal_run_service_pb.js"
import { RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import { prometheusText } from "../../../src/adapters/metrics/PrometheusText.js"
import { shutdownError } from "../../../src/adapters/connect/ConnectErrors.js"
import { inBandStatus, rpcMetrics } from "../../../src/adapters/connect/RpcMetrics.js"
import { parseExposition, valueOf } from "../../support/Scrape.js"

const read = () => parseExposition(prometheusText(Metric.unsafeSnapshot()))

const streamRequest = (method: StreamRequest["method"], signal: AbortSignal, contentType = "application/grpc"): StreamRequest => ({
  stream: true,
  service: method.parent,
  method,
  requestMethod: "POST",
  url: "http://localhost/x",
  signal,
  header: new Headers({ "content-type": contentType }),
  contextValues: createContextValues(),
  message: (async function*() {})()
} as unknown as StreamRequest)

/** A stream of `count` messages that then ends as `end` says. */
const respond = (count: number, end: () => void) => async (req: StreamRequest): Promise<StreamResponse> => ({
  stream: true,
  service: req.service,
  method: req.method,
  header: new Headers(),
  trailer: new Headers(),
  message: (async function*() {
    for (let i = 0; i < count; i++) yield {}
    end()
  })()
} as unknown as StreamResponse)

const drain = async (messages: AsyncIterable<unknown>) => {
  let count = 0
  try {
    for await (const _ of messages) count++
  } catch (error) {
    return { count, error: ConnectError.from(error) }
  }
  return { count, error: undefined }
}

const ended = (method: string, reason: string) => valueOf(read(), "runs_watch_ended_total", { rpc_method: method, reason })
const open = (method: string) => valueOf(read(), "runs_watch_streams", { rpc_method: method })
const observed = (method: string, outcome: Record<string, string>) =>
  valueOf(read(), "rpc_server_duration_milliseconds_count", {
    rpc_system: "grpc",
    rpc_service: "flyteidl2.workflow.RunService",
    rpc_method: method,
    ...outcome
  })

describe("the RPC metrics interceptor", () => {
  it("a watch that completes, falls behind or is stopped at shutdown: open while it runs, ended by reason", async () => {
    const method = RunService.method.watchGroups
    const cases = [
      { end: () => undefined, reason: "completed", status: "0" },
      { end: () => { throw new ConnectError("behind", Code.ResourceExhausted) }, reason: "fell_behind", status: "8" },
      { end: () => { throw shutdownError() }, reason: "shutdown", status: "14" },
      { end: () => { throw new ConnectError("db down", Code.Unavailable) }, reason: "error", status: "14" }
    ]
    for (const { end, reason, status } of cases) {
      const before = { ended: ended("WatchGroups", reason), observed: observed("WatchGroups", { rpc_grpc_status_code: status }) }
      const res = await rpcMetrics(respond(2, end) as never)(streamRequest(method, new AbortController().signal)) as StreamResponse
      expect(open("WatchGroups")).toBe(1)
      const { count } = await drain(res.message)
      expect(count).toBe(2)
      expect(open("WatchGroups")).toBe(0)
      expect(ended("WatchGroups", reason) - before.ended).toBe(1)
      expect(observed("WatchGroups", { rpc_grpc_status_code: status }) - before.observed).toBe(1)
    }
  })

  it("a watch whose client goes away is cancelled at the abort, even when nothing pulls it again", async () => {
    const method = RunService.method.watchClusterEvents
    const controller = new AbortController()
    const before = ended("WatchClusterEvents", "cancelled")
    const never = new Promise<void>(() => undefined)
    const next = async (req: StreamRequest): Promise<StreamResponse> => ({
      stream: true, service: req.service, method: req.method, header: new Headers(), trailer: new Headers(),
      message: (async function*() { yield {}; await never })()
    } as unknown as StreamResponse)
    const res = await rpcMetrics(next as never)(streamRequest(method, controller.signal)) as StreamResponse
    const iterator = res.message[Symbol.asyncIterator]()
    await iterator.next()
    expect(open("WatchClusterEvents")).toBe(1)
    controller.abort()
    expect(open("WatchClusterEvents")).toBe(0)
    expect(ended("WatchClusterEvents", "cancelled") - before).toBe(1)
    expect(observed("WatchClusterEvents", { rpc_grpc_status_code: "1" })).toBeGreaterThanOrEqual(1)
  })

  it("a unary InternalRunService answer with an in-band error carries its code; a thrown error its own", async () => {
    const method = InternalRunService.method.updateActionStatus
    const labels = {
      rpc_system: "connect_rpc",
      rpc_service: "flyteidl2.workflow.InternalRunService",
      rpc_method: "UpdateActionStatus"
    }
    const count = (extra: Record<string, string>) => valueOf(read(), "rpc_server_duration_milliseconds_count", { ...labels, ...extra })
    const before = [count({ runs_inband_status_code: "not_found" }), count({ rpc_connect_rpc_error_code: "unavailable" })]
    const request = (): UnaryRequest => ({
      ...streamRequest(method as never, new AbortController().signal, "application/proto"),
      stream: false,
      message: create(method.input)
    } as unknown as UnaryRequest)
    const answered = async (req: UnaryRequest): Promise<UnaryResponse> => {
      req.contextValues.set(inBandStatus, Code.NotFound)
      return { stream: false, message: {}, header: new Headers(), trailer: new Headers() } as unknown as UnaryResponse
    }
    await rpcMetrics(answered as never)(request())
    await expect(rpcMetrics((async () => {
      throw new ConnectError("down", Code.Unavailable)
    }) as never)(request())).rejects.toThrow("down")
    expect([count({ runs_inband_status_code: "not_found" }), count({ rpc_connect_rpc_error_code: "unavailable" })])
      .toEqual([before[0]! + 1, before[1]! + 1])
  })
})
