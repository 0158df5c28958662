import { describe } from "@effect/vitest"
import type { SqlClient } from "@effect/sql"
import { Layer } from "effect"
import { runMigrations } from "../../src/adapters/sql/SqlMigrations.js"
import { layerTestPostgres, layerTestSqlite, postgresAdminUrl } from "./TestDatabases.js"

export type BackendName = "memory" | "sqlite" | "postgres"

/**
 * One place a suite runs. `layer` is built afresh by every `Effect.provide`, so each test that provides it
 * gets its own state (a new SQLite file, a new Postgres database) and can run in parallel with the others.
 */
export interface Backend<A> {
  readonly name: BackendName
  readonly skip: boolean
  readonly layer: Layer.Layer<A, unknown>
}

const skipPostgres = () => postgresAdminUrl() === undefined

/** Bare SqlClients, not migrated: for tests of the SQL foundation itself. */
export const sqlBackends = (): ReadonlyArray<Backend<SqlClient.SqlClient>> => [
  { name: "sqlite", skip: false, layer: layerTestSqlite },
  { name: "postgres", skip: skipPostgres(), layer: layerTestPostgres }
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
}): ReadonlyArray<Backend<A>> => [
  { name: "memory", skip: false, layer: adapters.memory },
  ...sqlBackends().map((backend) => ({ ...backend, layer: Layer.provide(adapters.sql, migrated(backend.layer)) }))
]

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
