import type { Interceptor, UnaryRequest } from "@connectrpc/connect"
import { RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import { rpcMetrics } from "../src/adapters/connect/RpcMetrics.js"

/**
 * What the metrics interceptor adds to one call, apart from any server: a million unary calls through it and
 * through a bare handler, alternating, each call answered at once. `npx tsx bench/InterceptorCost.ts`
 */
const calls = 1_000_000
const answer = { stream: false, message: {} }
const bare: Parameters<Interceptor>[0] = async () => answer as never
const request = {
  method: RunService.method.createRun,
  header: new Headers({ "content-type": "application/proto" }),
  contextValues: { get: () => 0 },
  signal: new AbortController().signal
} as unknown as UnaryRequest

const timePerCall = async (handler: Parameters<Interceptor>[0]) => {
  const start = performance.now()
  for (let i = 0; i < calls; i++) await handler(request)
  return ((performance.now() - start) * 1000) / calls
}

const observed = rpcMetrics(bare)
for (let round = 1; round <= 3; round++) {
  const without = await timePerCall(bare)
  const withMetrics = await timePerCall(observed)
  console.log(`round ${round}: bare ${without.toFixed(2)} µs, with metrics ${withMetrics.toFixed(2)} µs per call`)
}
