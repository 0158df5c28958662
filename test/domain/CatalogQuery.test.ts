import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { catalogPage, encodeCatalogToken, parseCatalogRequest } from "../../src/domain/CatalogQuery.js"
import { parseFilterExpression } from "../../src/domain/FilterExpression.js"
import type { ListRequestInput } from "../../src/domain/ListRequest.js"
import { projectList, projectOfRuns } from "../../src/domain/Project.js"
import { taskList } from "../../src/domain/TaskCatalog.js"

const request = (overrides: Partial<ListRequestInput> = {}): ListRequestInput => ({
  limit: 0,
  token: "",
  sortBy: undefined,
  sortByFields: [],
  filters: [],
  rawFilters: [],
  ...overrides
})

const message = <A, E extends { readonly message: string }>(effect: Effect.Effect<A, E>) =>
  Effect.map(Effect.either(effect), (result) => (Either.isLeft(result) ? result.left.message : "ok"))

describe("CatalogQuery", () => {
  it.effect("orders by the schema's default, then its unique key in the first key's direction", () =>
    Effect.gen(function*() {
      const projects = yield* parseCatalogRequest(projectList, request())
      expect(projects.order).toEqual([{ field: "id", direction: "ASC" }])
      expect(projects.limit).toBe(50)
      const tasks = yield* parseCatalogRequest(taskList, request({ sortBy: { key: "deployed_at", direction: "ASC" } }))
      expect(tasks.order.map((key) => `${key.field}:${key.direction}`)).toEqual([
        "created_at:ASC", "project:ASC", "domain:ASC", "name:ASC", "version:ASC"
      ])
    }))

  it.effect("refuses unknown fields, values of the wrong kind, text functions on numbers, big limits and foreign tokens", () =>
    Effect.gen(function*() {
      expect(yield* message(parseCatalogRequest(projectList, request({ sortBy: { key: "colour", direction: "ASC" } }))))
        .toContain(`invalid sort field "colour"`)
      expect(yield* message(parseCatalogRequest(projectList, request({ filters: [{ function: 0, field: "state", values: ["busy"] }] }))))
        .toContain(`invalid value "busy" for field "state"`)
      expect(yield* message(parseCatalogRequest(projectList, request({ filters: [{ function: 6, field: "state", values: ["1"] }] }))))
        .toContain(`works only on text fields`)
      expect(yield* message(parseCatalogRequest(taskList, request({ filters: [{ function: 3, field: "created_at", values: ["yesterday"] }] }))))
        .toContain("RFC 3339")
      expect(yield* message(parseCatalogRequest(taskList, request({ limit: 201 })))).toContain("limit")
      const many = Array.from({ length: 51 }, () => ({ function: 0, field: "name", values: ["x"] }))
      expect(yield* message(parseCatalogRequest(projectList, request({ filters: many })))).toContain("too many filters")
      const values = Array.from({ length: 1001 }, (_, i) => `p${i}`)
      expect(yield* message(parseCatalogRequest(projectList, request({ filters: [{ function: 7, field: "id", values }] }))))
        .toContain("too many filter values")
      expect((yield* message(parseCatalogRequest(projectList, request({ sortBy: { key: "k".repeat(10_000), direction: "ASC" } })))).length)
        .toBeLessThan(300)
      // A token made for the project list is refused by the task list, and by the project list in another order.
      const query = yield* parseCatalogRequest(projectList, request())
      const token = encodeCatalogToken(projectList, query, ["p1"])
      expect(yield* message(parseCatalogRequest(projectList, request({ token })))).toBe("ok")
      expect(yield* message(parseCatalogRequest(taskList, request({ token })))).toBe("invalid token")
      expect(yield* message(parseCatalogRequest(projectList, request({ token, sortBy: { key: "name", direction: "ASC" } }))))
        .toBe("invalid token")
    }))

  it.effect("pages rows in memory with keyset cursors", () =>
    Effect.gen(function*() {
      const rows = ["d", "a", "c", "b"].map(projectOfRuns)
      const first = yield* parseCatalogRequest(projectList, request({ limit: 3 }))
      const page = catalogPage(rows, first, (row, field) => (field === "state" ? row.state : row[field]))
      expect(page.items.map((row) => row.id)).toEqual(["a", "b", "c"])
      const next = yield* parseCatalogRequest(projectList, request({ limit: 3, token: encodeCatalogToken(projectList, first, page.next) }))
      expect(catalogPage(rows, next, (row, field) => (field === "state" ? row.state : row[field])).items.map((row) => row.id))
        .toEqual(["d"])
    }))
})

describe("FilterExpression", () => {
  it.effect("reads fn(field,value) terms joined by +, value_in's values split by ;", () =>
    Effect.gen(function*() {
      expect(yield* parseFilterExpression("")).toEqual([])
      expect(yield* parseFilterExpression("eq(state,0)+value_in(id,a;b)+contains_case_insensitive(name, ML)")).toEqual([
        { function: 0, field: "state", values: ["0"] },
        { function: 7, field: "id", values: ["a", "b"] },
        { function: 14, field: "name", values: [" ML"] }
      ])
      expect(yield* message(parseFilterExpression("eq(state)"))).toContain(`invalid filter "eq(state)"`)
      expect(yield* message(parseFilterExpression("like(name,x)"))).toContain("expected fn(field,value)")
    }))
})
