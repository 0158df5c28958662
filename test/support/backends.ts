import { describe } from "@effect/vitest"
import type { SqlClient } from "@effect/sql"
import { type Context, Effect, Layer, type Scope } from "effect"
import { layerPostgresUrl, layerSqlite } from "../../src/adapters/sql/SqlClients.js"
import { runMigrations } from "../../src/adapters/sql/SqlMigrations.js"
import {
  freshPostgresUrl,
  freshSqliteFile,
  layerTestPostgres,
  layerTestSqlite,
  postgresAdminUrl
} from "./TestDatabases.js"

export type BackendName = "memory" | "sqlite" | "postgres"

/**
 * One place a suite runs. `layer` is built afresh by every `Effect.provide`, so each test that provides it
 * gets its own state (a new SQLite file, a new Postgres database) and can run in parallel with the others.
 */
export interface Backend<A> {
  readonly name: BackendName
  readonly skip: boolean
  readonly layer: Layer.Layer<A, unknown>
  /** Two builds of the adapters on one new database, each with its own connections (in memory, one build twice):
   * what one reads of the other's writes has been committed. */
  readonly twins: Effect.Effect<readonly [Context.Context<A>, Context.Context<A>], unknown, Scope.Scope>
}

const skipPostgres = () => postgresAdminUrl() === undefined

type Clients = readonly [Layer.Layer<SqlClient.SqlClient, unknown>, Layer.Layer<SqlClient.SqlClient, unknown>]

/** Two clients of one new database. */
const sqliteClients: Effect.Effect<Clients, never, Scope.Scope> = Effect.map(
  freshSqliteFile,
  (file) => [layerSqlite({ file }), layerSqlite({ file })] as const
)
const postgresClients: Effect.Effect<Clients, unknown, Scope.Scope> = Effect.map(
  freshPostgresUrl,
  ({ url }) => [layerPostgresUrl(url), layerPostgresUrl(url)] as const
)

const twinsOf = <A, E>(
  clients: Effect.Effect<Clients, unknown, Scope.Scope>,
  adapters: (client: Layer.Layer<SqlClient.SqlClient, unknown>) => Layer.Layer<A, E>
) =>
  Effect.gen(function*() {
    const [first, second] = yield* clients
    const one = yield* Layer.build(adapters(first))
    const other = yield* Layer.build(adapters(second))
    return [one, other] as const
  })

/** Bare SqlClients, not migrated: for tests of the SQL foundation itself. */
export const sqlBackends = (): ReadonlyArray<Backend<SqlClient.SqlClient>> => [
  { name: "sqlite", skip: false, layer: layerTestSqlite, twins: twinsOf(sqliteClients, (client) => client) },
  { name: "postgres", skip: skipPostgres(), layer: layerTestPostgres, twins: twinsOf(postgresClients, (client) => client) }
]

/** A client with every migration applied. */
const migrated = <E>(client: Layer.Layer<SqlClient.SqlClient, E>) =>
  Layer.provideMerge(Layer.effectDiscard(runMigrations), client)

/**
 * The ports under test on every backend: the memory adapters as given, the SQL adapters on a migrated
 * SQLite and Postgres database. A later port adds its own layers to `memory` and `sql`.
 */
export const backends = <A, E1, E2>(adapters: {
  readonly memory: Layer.Layer<A, E1>
  readonly sql: Layer.Layer<A, E2, SqlClient.SqlClient>
}): ReadonlyArray<Backend<A>> => {
  const memoryTwins = Effect.map(Layer.build(adapters.memory), (context) => [context, context] as const)
  // Built one after the other: the second finds the migrations applied.
  const sqlTwins = (clients: Effect.Effect<Clients, unknown, Scope.Scope>) =>
    twinsOf(clients, (client) => Layer.provide(adapters.sql, Layer.provideMerge(Layer.effectDiscard(runMigrations), client)))
  return [
    { name: "memory", skip: false, layer: adapters.memory, twins: memoryTwins },
    ...sqlBackends().map((backend) => ({
      ...backend,
      layer: Layer.provide(adapters.sql, migrated(backend.layer)),
      twins: sqlTwins(backend.name === "sqlite" ? sqliteClients : postgresClients)
    }))
  ]
}

/** `describe(`${suite} [${backend}]`)` per backend; CI greps for `[memory]`, `[sqlite]` and `[postgres]`. */
export const describeBackends = <A>(
  suite: string,
  list: ReadonlyArray<Backend<A>>,
  body: (backend: Backend<A>) => void
): void => {
  for (const backend of list) {
    describe.skipIf(backend.skip)(`${suite} [${backend.name}]`, () => body(backend))
  }
}
