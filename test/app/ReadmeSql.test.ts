import { SqlClient } from "@effect/sql"
import { expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { runMigrations } from "../../src/adapters/sql/SqlMigrations.js"
import * as SqlRunStore from "../../src/adapters/sql/SqlRunStore.js"
import { RunStore } from "../../src/ports/RunStore.js"
import { describeBackends, sqlBackends } from "../support/backends.js"
import { childAction, runView } from "../support/Fixtures.js"

const readme = readFileSync(join(import.meta.dirname, "..", "..", "README.md"), "utf8")
const statements = [...readme.matchAll(/```sql\n([\s\S]*?)```/g)]
  .flatMap((block) => block[1]!.split(";"))
  .map((statement) => statement.replace(/^\s*--.*$/gm, "").trim())
  .filter((statement) => statement !== "")

describeBackends("README inspection queries", sqlBackends(), (backend) => {
  const layer = SqlRunStore.layer.pipe(
    Layer.provideMerge(Layer.effectDiscard(runMigrations)),
    Layer.provideMerge(backend.layer)
  )

  it("the README has inspection queries for runs and actions", () => {
    expect(statements.some((statement) => /FROM runs/.test(statement))).toBe(true)
    expect(statements.some((statement) => /FROM actions/.test(statement))).toBe(true)
  })

  it.effect("every fenced sql block of the README runs as written; the inspection queries show the created run", () =>
    Effect.gen(function*() {
      const store = yield* RunStore
      const view = runView({ key: { project: "flytesnacks", domain: "development", name: "readme-run" } })
      yield* store.createRun({ view, task: undefined })
      yield* store.recordAction(childAction(view, "child-1"))
      const sql = yield* SqlClient.SqlClient
      for (const statement of statements) {
        const rows = yield* sql.unsafe<Record<string, unknown>>(statement)
        if (/FROM (runs|actions)\b/.test(statement)) {
          expect(rows.some((row) => row["name"] === "readme-run" || row["run_name"] === "readme-run"), statement).toBe(true)
        }
      }
    }).pipe(Effect.provide(layer)))
})
