import { createClient } from "@connectrpc/connect"
import { createConnectTransport } from "@connectrpc/connect-node"
import { expect, it } from "@effect/vitest"
import { Clock, Effect, Layer } from "effect"
import { RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import * as MemoryRunStore from "../../src/adapters/memory/MemoryRunStore.js"
import * as SqlOutbox from "../../src/adapters/sql/SqlOutbox.js"
import * as SqlRunStore from "../../src/adapters/sql/SqlRunStore.js"
import { backends, describeBackends } from "../support/backends.js"
import { layerActionsWorker } from "../support/Dispatch.js"
import { createNamed } from "../support/RunRequests.js"
import { baseUrl, layerTestServer } from "../support/TestApp.js"
import { eventually, makeTestExecutor } from "../support/TestExecutor.js"

const stores = backends({ memory: MemoryRunStore.layerWithOutbox, sql: Layer.merge(SqlRunStore.layer, SqlOutbox.layer) })

describeBackends("Dispatch end to end", stores, (backend) => {
  it.live("CreateRun reaches the executor as Enqueue within a second, AbortRun as Abort with its reason", () =>
    Effect.gen(function*() {
      const executor = yield* makeTestExecutor
      // The worker as the service runs it: the default poll interval.
      yield* Layer.build(layerActionsWorker(executor, { pollInterval: "200 millis" }))
      const client = createClient(RunService, createConnectTransport({ baseUrl: yield* baseUrl, httpVersion: "2" }))
      const started = yield* Clock.currentTimeMillis
      const { run } = yield* Effect.promise(() => client.createRun(createNamed("e2e-run")))
      yield* eventually("the executor has the run", Effect.sync(() => executor.calls.length === 1), "1 second")
      expect(executor.calls[0]?.kind).toBe("enqueue")
      expect((yield* Clock.currentTimeMillis) - started).toBeLessThan(1000)

      yield* Effect.promise(() => client.abortRun({ runId: run!.action!.id!.run!, reason: "changed my mind" }))
      yield* eventually("the executor has the abort", Effect.sync(() => executor.calls.length === 2), "1 second")
      const abort = executor.calls[1]
      expect(abort?.kind === "abort" ? abort.request.reason : undefined).toBe("changed my mind")
      expect(executor.calls.map((call) => call.key)).toEqual([
        "flytesnacks/development/e2e-run/a0",
        "flytesnacks/development/e2e-run/a0"
      ])
    }).pipe(Effect.scoped, Effect.provide(Layer.merge(layerTestServer(backend.layer), backend.layer))))
})
