import { Code, ConnectError, createContextKey, type Interceptor } from "@connectrpc/connect"
import type { DescMethod } from "@bufbuild/protobuf"
import * as Metrics from "../../ports/Metrics.js"
import { isShutdown } from "./ConnectErrors.js"
import { onStreamEnd } from "./StreamEnd.js"

/**
 * The code of the `google.rpc.Status` an InternalRunService handler answered in-band (0 when it succeeded):
 * the interceptor cannot read it from a binary response, so the handler leaves it here.
 */
export const inBandStatus = createContextKey<number>(0, { description: "in-band status code" })

export type RpcSystem = "connect_rpc" | "grpc" | "grpc_web"

/** The protocol of a request, as OpenTelemetry's `rpc.system` names it. */
export const rpcSystem = (contentType: string | null): RpcSystem =>
  contentType === null ? "connect_rpc"
    : contentType.startsWith("application/grpc-web") ? "grpc_web"
    : contentType.startsWith("application/grpc") ? "grpc"
    : "connect_rpc"

/** `Code.InvalidArgument` as Connect names it on the wire and in the Go original's label: `invalid_argument`. */
export const codeName = (code: Code): string => Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase()

/**
 * As the Go original's OpenTelemetry interceptor records an outcome: Connect names errors only, gRPC always gives
 * the number. `separator` is `_` for Prometheus labels, `.` for span attributes.
 */
export const outcomeAttributes = (system: RpcSystem, code: Code | undefined, separator: "_" | "."): Record<string, string> =>
  system === "connect_rpc"
    ? (code === undefined ? {} : { [`rpc${separator}connect_rpc${separator}error_code`]: codeName(code) })
    : { [`rpc${separator}grpc${separator}status_code`]: String(code ?? 0) }

const outcome = (system: RpcSystem, code: Code | undefined): ReadonlyArray<readonly [string, string]> =>
  Object.entries(outcomeAttributes(system, code, "_"))

const observe = (
  system: RpcSystem,
  method: DescMethod,
  startedAt: number,
  code: Code | undefined,
  inBand: number
) => {
  const pairs: Array<readonly [string, string]> = [
    ["rpc_system", system],
    ["rpc_service", method.parent.typeName],
    ["rpc_method", method.name],
    ...outcome(system, code)
  ]
  if (inBand !== 0) pairs.push(["runs_inband_status_code", codeName(inBand)])
  Metrics.rpcServerDuration.unsafeUpdate(performance.now() - startedAt, Metrics.labels(pairs))
}

const isWatch = (method: DescMethod) => method.methodKind === "server_streaming" && method.name.startsWith("Watch")

const endReason = (code: Code | undefined, error: unknown): string =>
  code === undefined ? "completed"
    : code === Code.Canceled ? "cancelled"
    : code === Code.ResourceExhausted ? "fell_behind"
    : isShutdown(error) ? "shutdown"
    : "error"

/**
 * Observes every RPC in `rpc_server_duration_milliseconds` when it ends (a stream when its last message is
 * taken or it fails, or when the client cancels it), and the watch streams open and ended.
 */
export const rpcMetrics: Interceptor = (next) => async (req) => {
  const startedAt = performance.now()
  const system = rpcSystem(req.header.get("content-type"))
  const method = req.method
  let res
  try {
    res = await next(req)
  } catch (error) {
    observe(system, method, startedAt, ConnectError.from(error).code, 0)
    throw error
  }
  if (!res.stream) {
    observe(system, method, startedAt, undefined, req.contextValues.get(inBandStatus))
    return res
  }
  const watch = isWatch(method)
  const byMethod = Metrics.labels([["rpc_method", method.name]])
  if (watch) Metrics.watchStreams.unsafeModify(1, byMethod)
  const message = onStreamEnd(res.message, req.signal, (error) => {
    const code = error === undefined ? undefined : ConnectError.from(error).code
    observe(system, method, startedAt, code, 0)
    if (!watch) return
    Metrics.watchStreams.unsafeModify(-1, byMethod)
    Metrics.watchEnded.unsafeUpdate(1, Metrics.labels([["rpc_method", method.name], ["reason", endReason(code, error)]]))
  })
  return { ...res, message }
}
