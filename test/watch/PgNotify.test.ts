import { Code } from "@connectrpc/connect"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { ActionPhase } from "#gen/flyteidl2/common/phase_pb.js"
import { layerPostgresUrl } from "../../src/adapters/sql/SqlClients.js"
import { runMigrations } from "../../src/adapters/sql/SqlMigrations.js"
import * as SqlRunStore from "../../src/adapters/sql/SqlRunStore.js"
import { ServerAddress } from "../../src/app/ServerLive.js"
import { FeedSubscribers } from "../../src/ports/ChangeFeed.js"
import { createNamed } from "../support/RunRequests.js"
import { makeTcpProxy } from "../support/TcpProxy.js"
import { layerTestServer } from "../support/TestApp.js"
import { freshPostgresUrl, postgresAdminUrl } from "../support/TestDatabases.js"
import { actionId, call, clientsAt, openStream, pgNotifyFeed, runId } from "./WatchSupport.js"

/** One replica: its own pool and its own listening connection (at `listenUrl`) on the shared database. */
const replica = (url: string, listenUrl = url) => {
  const sql = layerPostgresUrl(url)
  return layerTestServer(Layer.provide(SqlRunStore.layer, sql), {
    feed: Layer.provide(pgNotifyFeed(listenUrl, { pingIntervalMillis: 500 }), sql)
  })
}

const start = (layer: ReturnType<typeof replica>) =>
  Effect.map(Layer.build(layer), (context) => {
    const address = Context.get(context, ServerAddress)
    return { ...clientsAt(`http://${address.host}:${address.port}`), subscribers: Context.get(context, FeedSubscribers) }
  })

const names = (message: { runs: ReadonlyArray<{ action?: { id?: { run?: { name: string } } } }> }) =>
  message.runs.map((run) => run.action?.id?.run?.name)

const withUrl = (url: string, port: number) => {
  const changed = new URL(url)
  changed.hostname = "127.0.0.1"
  changed.port = String(port)
  return changed.toString()
}

describe.skipIf(postgresAdminUrl() === undefined)("Watches across replicas [postgres]", () => {
  it.live("a watcher on one replica sees the other's writes, and its own replica's once", () =>
    Effect.scoped(Effect.gen(function*() {
      const database = yield* freshPostgresUrl
      yield* Effect.provide(runMigrations, layerPostgresUrl(database.url))
      const a = yield* start(replica(database.url))
      const b = yield* start(replica(database.url))

      const runsOnB = yield* openStream((signal) => b.runs.watchRuns({ target: { case: "org", value: "" } }, { signal }))
      expect((yield* runsOnB.next).runs).toEqual([])
      yield* call(() => a.runs.createRun(createNamed("from-a")))
      expect(names(yield* runsOnB.next)).toEqual(["from-a"])
      yield* call(() => b.runs.createRun(createNamed("from-b")))
      expect(names(yield* runsOnB.next)).toEqual(["from-b"])
      yield* call(() => a.internal.updateActionStatus({ actionId: actionId("from-b", "a0"), status: { phase: 4, attempts: 1 } }))
      const running = yield* runsOnB.next
      expect(names(running)).toEqual(["from-b"])
      expect(running.runs[0]?.action?.status?.phase).toBe(ActionPhase.RUNNING)

      const detailsOnA = yield* openStream((signal) => a.runs.watchRunDetails({ runId: runId("from-a") }, { signal }))
      expect((yield* detailsOnA.next).details?.action?.status?.phase).toBe(ActionPhase.QUEUED)
      yield* call(() => b.runs.abortRun({ runId: runId("from-a") }))
      expect((yield* detailsOnA.next).details?.action?.status?.phase).toBe(ActionPhase.ABORTED)
      yield* detailsOnA.end
      expect(names(yield* runsOnB.next)).toEqual(["from-a"])
    })), 60_000)

  it.live("when the listening connection drops, open watches end with Unavailable; new ones work once it is back", () =>
    Effect.scoped(Effect.gen(function*() {
      const database = yield* freshPostgresUrl
      yield* Effect.provide(runMigrations, layerPostgresUrl(database.url))
      const target = new URL(database.url)
      const proxy = yield* makeTcpProxy({ host: target.hostname, port: Number(target.port || 5432) })
      const a = yield* start(replica(database.url))
      const b = yield* start(replica(database.url, withUrl(database.url, proxy.port)))

      const watch = yield* openStream((signal) => b.runs.watchRuns({ target: { case: "org", value: "" } }, { signal }))
      yield* watch.next
      yield* proxy.cut
      const lost = yield* watch.failure
      expect(lost.code).toBe(Code.Unavailable)
      expect(lost.rawMessage).toContain("watch again")

      const whileDown = yield* openStream((signal) => b.runs.watchRuns({ target: { case: "org", value: "" } }, { signal }))
      expect((yield* whileDown.failure).code).toBe(Code.Unavailable)

      yield* proxy.restore
      const again = yield* Effect.gen(function*() {
        for (let i = 0; i < 200; i++) {
          const stream = yield* openStream((signal) => b.runs.watchRuns({ target: { case: "org", value: "" } }, { signal }))
          const first = yield* stream.raw
          if (first._tag === "Message") return stream
          yield* Effect.sleep("50 millis")
        }
        return yield* Effect.dieMessage("the replica did not listen again within 10 s")
      })
      yield* call(() => a.runs.createRun(createNamed("after")))
      expect(names(yield* again.next)).toEqual(["after"])
    })), 60_000)
})
