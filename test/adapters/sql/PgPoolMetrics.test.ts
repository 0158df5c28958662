import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Context, Deferred, Duration, Effect, Fiber, Layer, Metric, Redacted, Schedule } from "effect"
import * as MetricReadingsLive from "../../../src/adapters/metrics/MetricReadingsLive.js"
import { prometheusText } from "../../../src/adapters/metrics/PrometheusText.js"
import { layerPostgres } from "../../../src/adapters/sql/SqlClients.js"
import { MetricReadings } from "../../../src/ports/Metrics.js"
import { parseExposition, valueOf } from "../../support/Scrape.js"
import { freshPostgresUrl, postgresAdminUrl } from "../../support/TestDatabases.js"

const pool = () => {
  const read = parseExposition(prometheusText(Metric.unsafeSnapshot()))
  return Object.fromEntries(["idle", "used", "waiting"].map((state) =>
    [state, valueOf(read, "runs_db_pool_connections", { state })]))
}

describe.skipIf(postgresAdminUrl() === undefined)("runs_db_pool_connections (Postgres)", () => {
  it.live("reads the pool's connections by state when the metrics are read", () =>
    Effect.scoped(Effect.gen(function*() {
      const { url } = yield* freshPostgresUrl
      const parsed = new URL(url)
      const database = layerPostgres({
        host: parsed.hostname,
        port: Number(parsed.port),
        dbname: parsed.pathname.slice(1),
        username: decodeURIComponent(parsed.username),
        password: Redacted.make(decodeURIComponent(parsed.password)),
        extraOptions: "",
        maxIdleConnections: 10,
        maxOpenConnections: 2,
        connMaxLifeTime: Duration.hours(1)
      })
      const context = yield* Layer.build(database.pipe(Layer.provideMerge(MetricReadingsLive.layer)))
      const sql = Context.get(context, SqlClient.SqlClient)
      const readings = Context.get(context, MetricReadings)

      yield* sql`SELECT 1`
      yield* readings.readAll
      expect(pool()).toEqual({ idle: 1, used: 0, waiting: 0 })

      // Two connections held, and a third query waiting for one of them.
      const held = yield* Deferred.make<void>()
      const holding = yield* Effect.fork(Effect.all([
        sql.withTransaction(Effect.zipRight(sql`SELECT 1`, Deferred.await(held))),
        sql.withTransaction(Effect.zipRight(sql`SELECT 1`, Deferred.await(held)))
      ], { concurrency: 2 }))
      // Polled (the pool connects on its own), each look a little apart so the connections can be made.
      const until = (done: (p: Record<string, number>) => boolean) =>
        Effect.zipRight(readings.readAll, Effect.sync(pool)).pipe(
          Effect.filterOrFail(done, () => "not yet"),
          Effect.retry(Schedule.spaced("10 millis"))
        )
      yield* until((p) => p["used"] === 2)
      const waiting = yield* Effect.fork(sql`SELECT 1`)
      const seen = yield* until((p) => p["waiting"] === 1)
      expect(seen).toEqual({ idle: 0, used: 2, waiting: 1 })
      yield* Deferred.succeed(held, undefined)
      yield* Fiber.join(holding)
      yield* Fiber.join(waiting)
    }).pipe(Effect.orDie)), 30_000)
})
