import { create, fromBinary, toBinary } from "@bufbuild/protobuf"
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect"
import { connectNodeAdapter } from "@connectrpc/connect-node"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { createServer, type Http2Server } from "node:http2"
import type { AddressInfo } from "node:net"
import { setTimeout as sleep } from "node:timers/promises"
import { ActionIdentifierSchema } from "#gen/flyteidl2/common/identifier_pb.js"
import { ActionSchema, ActionStatusSchema, EnrichedActionSchema } from "#gen/flyteidl2/workflow/run_definition_pb.js"
import { RunService, WatchActionsResponseSchema } from "#gen/flyteidl2/workflow/run_service_pb.js"
import { serverStream, session, WireFields } from "../../bench/WireStream.js"

const update = (name: string, attempts: number) =>
  create(WatchActionsResponseSchema, {
    enrichedActions: [{
      action: {
        id: { run: { org: "o", project: "p", domain: "d", name: "r" }, name },
        metadata: { parent: "a0" },
        status: { phase: 4, attempts }
      },
      meetsFilter: true,
      childrenPhaseCounts: { 4: 2 }
    }]
  })

// WatchActions of run "ends" sends two messages and ends with NotFound; of any other run, one, then waits.
const routes = (router: ConnectRouter) =>
  router.service(RunService, {
    async *watchActions(request, context) {
      yield update("child0", 1)
      if (request.runId?.name !== "ends") return await sleep(60_000, undefined, { signal: context.signal })
      yield update("child1", 7)
      throw new ConnectError("run p/ends is gone", Code.NotFound)
    }
  })

let server: Http2Server
let baseUrl: string

beforeAll(async () => {
  server = createServer(connectNodeAdapter({ routes }))
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

const seen = (bytes: Uint8Array) =>
  new WireFields(bytes).messages(WatchActionsResponseSchema.field.enrichedActions.number).map((enriched) => {
    const action = enriched.message(EnrichedActionSchema.field.action.number)
    return [
      action?.message(ActionSchema.field.id.number)?.string(ActionIdentifierSchema.field.name.number),
      action?.message(ActionSchema.field.status.number)?.uint32(ActionStatusSchema.field.attempts.number)
    ]
  })

describe("the bench's wire-level stream reader", () => {
  it("reads the fields a stream looks at, as a whole decode does", () => {
    const bytes = toBinary(WatchActionsResponseSchema, update("child3", 12))
    const decoded = fromBinary(WatchActionsResponseSchema, bytes).enrichedActions[0]?.action
    expect(seen(bytes)).toEqual([[decoded?.id?.name, decoded?.status?.attempts]])
    expect(seen(bytes)).toEqual([["child3", 12]])
    // A field read as the wrong kind names the field rather than reading garbage.
    expect(() => new WireFields(bytes).uint32(WatchActionsResponseSchema.field.enrichedActions.number))
      .toThrow(/field 1 has wire type 2, not 0/)
  })

  it("hands over each message of a Connect server stream and rejects with the error it ends with", async () => {
    const connection = session(baseUrl)
    try {
      const messages: Array<Uint8Array> = []
      const ended = serverStream(
        connection,
        RunService.method.watchActions,
        { runId: { org: "o", project: "p", domain: "d", name: "ends" } },
        new AbortController().signal,
        (bytes) => messages.push(bytes)
      )
      await expect(ended).rejects.toThrow("not_found: run p/ends is gone")
      expect(messages.map(seen)).toEqual([[["child0", 1]], [["child1", 7]]])
    } finally {
      connection.close()
    }
  })

  it("rejects when its signal aborts, after the messages that came", async () => {
    const connection = session(baseUrl)
    try {
      const abort = new AbortController()
      const messages: Array<Uint8Array> = []
      const following = serverStream(
        connection,
        RunService.method.watchActions,
        { runId: { org: "o", project: "p", domain: "d", name: "waits" } },
        abort.signal,
        (bytes) => {
          messages.push(bytes)
          abort.abort()
        }
      )
      await expect(following).rejects.toThrow("aborted")
      expect(messages.map(seen)).toEqual([[["child0", 1]]])
    } finally {
      connection.close()
    }
  })

  it("rejects with the method's error when the server does not implement it, and with the status for no such path", async () => {
    const connection = session(baseUrl)
    const follow = (method: typeof RunService.method.watchActions) =>
      serverStream(connection, method, { runId: { name: "r" } }, new AbortController().signal, () => undefined)
    try {
      await expect(follow(RunService.method.watchRunDetails as unknown as typeof RunService.method.watchActions))
        .rejects.toThrow("unimplemented: flyteidl2.workflow.RunService.WatchRunDetails is not implemented")
      await expect(follow({ ...RunService.method.watchActions, name: "NoSuchMethod" })).rejects.toThrow("HTTP status 404")
    } finally {
      connection.close()
    }
  })
})
