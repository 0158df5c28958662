import { expect, it } from "@effect/vitest"
import { Effect, Either, Option } from "effect"
import type { CatalogQuery, CatalogSchema } from "../../src/domain/CatalogQuery.js"
import { encodeCatalogToken, parseCatalogRequest } from "../../src/domain/CatalogQuery.js"
import { type ProjectField, projectList, type ProjectRecord, ProjectState } from "../../src/domain/Project.js"
import type { ListRequestInput } from "../../src/domain/ListRequest.js"
import type { TaskRecord } from "../../src/domain/Records.js"
import { type TaskField, taskList, versionList } from "../../src/domain/TaskCatalog.js"
import { RunStore } from "../../src/ports/RunStore.js"
import type { Backend } from "../support/backends.js"
import { at, comparable, payload, runView, taskKey, taskRecord } from "../support/Fixtures.js"

const request = (overrides: Partial<ListRequestInput> = {}): ListRequestInput => ({
  limit: 0,
  token: "",
  sortBy: undefined,
  sortByFields: [],
  filters: [],
  rawFilters: [],
  ...overrides
})

const queryOf = <F extends string>(schema: CatalogSchema<F>, overrides: Partial<ListRequestInput> = {}) =>
  Effect.orDie(parseCatalogRequest(schema, request(overrides)))

const project = (id: string, overrides: Partial<ProjectRecord> = {}): ProjectRecord => ({
  id,
  name: `Project ${id}`,
  description: `about ${id}`,
  labels: [["team", "ml"], ["tier", "1"]],
  state: ProjectState.ACTIVE,
  org: "testorg",
  domains: undefined,
  stored: true,
  createdAt: at(1),
  updatedAt: at(2),
  ...overrides
})

/** The RunStore's projects and tasks (ProjectService, TaskService). */
export const runStoreCatalogContract = (backend: Backend<RunStore>): void => {
  const provided = <A, E>(body: Effect.Effect<A, E, RunStore>) => Effect.provide(body, backend.layer)

  const ids = (items: ReadonlyArray<ProjectRecord>) => items.map((item) => item.id)

  it.effect("stores a project once, reads it back, and lists the projects runs name beside the stored ones", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const stored = project("alpha", { domains: ["dev", "prod"] })
      yield* store.createProject(stored)
      expect(comparable(Option.getOrThrow(yield* store.getProject("alpha")))).toStrictEqual(comparable(stored))
      const again = yield* Effect.either(store.createProject(project("alpha", { name: "other" })))
      expect(Either.isLeft(again) && again.left._tag).toBe("ProjectExists")
      yield* store.createRun({ view: runView({ key: { project: "zeta" } }), task: undefined })
      yield* store.createRun({ view: runView({ key: { project: "beta", domain: "staging" } }), task: undefined })
      yield* store.createRun({ view: runView({ key: { project: "alpha" } }), task: undefined })
      const fromRuns = Option.getOrThrow(yield* store.getProject("zeta"))
      expect(fromRuns).toMatchObject({ id: "zeta", name: "zeta", stored: false, state: ProjectState.ACTIVE, domains: undefined })
      expect(Option.isNone(yield* store.getProject("nope"))).toBe(true)
      const taken = yield* Effect.either(store.createProject(project("zeta")))
      expect(Either.isLeft(taken) && taken.left._tag).toBe("ProjectExists")
      const page = yield* store.listProjects(yield* queryOf(projectList))
      expect(ids(page.items)).toEqual(["alpha", "beta", "zeta"])
      expect(page.items.map((item) => item.stored)).toEqual([true, false, false])
      expect(page.next).toBeUndefined()
    })))

  it.effect("saves a project over the stored one, or stores one that only runs named", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      yield* store.createProject(project("alpha"))
      const renamed = project("alpha", { name: "Alpha", description: "", labels: [], state: ProjectState.ARCHIVED, updatedAt: at(9) })
      yield* store.saveProject(renamed)
      expect(comparable(Option.getOrThrow(yield* store.getProject("alpha")))).toStrictEqual(comparable(renamed))
      yield* store.createRun({ view: runView({ key: { project: "gamma" } }), task: undefined })
      yield* store.saveProject(project("gamma", { name: "Gamma" }))
      const page = yield* store.listProjects(yield* queryOf(projectList))
      expect(page.items.map((item) => [item.id, item.name, item.stored])).toEqual([["alpha", "Alpha", true], ["gamma", "Gamma", true]])
    })))

  it.effect("filters, orders and pages projects with keyset tokens", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      for (const [id, name, state] of [["p1", "Zed", 0], ["p2", "amber", 1], ["p3", "Amber%", 0], ["p4", "mid", 0]] as const) {
        yield* store.createProject(project(id, { name, state }))
      }
      yield* store.createRun({ view: runView({ key: { project: "p5" } }), task: undefined })
      const list = (query: CatalogQuery<ProjectField>) => Effect.map(store.listProjects(query), (page) => ids(page.items))
      const q = (overrides: Partial<ListRequestInput>) => queryOf(projectList, overrides)
      expect(yield* list(yield* q({ filters: [{ function: 0, field: "state", values: ["ACTIVE"] }] }))).toEqual(["p1", "p3", "p4", "p5"])
      expect(yield* list(yield* q({ filters: [{ function: 1, field: "state", values: ["1"] }] }))).toEqual(["p1", "p3", "p4", "p5"])
      expect(yield* list(yield* q({ filters: [{ function: 14, field: "name", values: ["AMBER"] }] }))).toEqual(["p2", "p3"])
      expect(yield* list(yield* q({ filters: [{ function: 6, field: "name", values: ["%"] }] }))).toEqual(["p3"])
      expect(yield* list(yield* q({ filters: [{ function: 7, field: "identifier", values: ["p2", "p5"] }] }))).toEqual(["p2", "p5"])
      expect(yield* list(yield* q({ sortBy: { key: "name", direction: "DESC" } }))).toEqual(["p5", "p4", "p2", "p1", "p3"])
      // Pages of two, in the default order, never repeating or skipping a project.
      const seen: Array<string> = []
      let token = ""
      for (let i = 0; i < 5; i++) {
        const query = yield* q({ limit: 2, token })
        const page = yield* store.listProjects(query)
        seen.push(...ids(page.items))
        if (page.next === undefined) break
        token = encodeCatalogToken(projectList, query, page.next)
      }
      expect(seen).toEqual(["p1", "p2", "p3", "p4", "p5"])
    })))

  const task = (name: string, version: string, seconds: number, overrides: Partial<TaskRecord> = {}) =>
    taskRecord({ key: taskKey({ name, version }), createdAt: at(seconds), ...overrides })

  it.effect("deploys a task once: the same key again returns the stored one, unchanged", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const first = task("t.deployed", "v1", 1, { deployedBy: "alice", entrypoint: true })
      expect(comparable(yield* store.deployTask(first))).toStrictEqual(comparable(first))
      const second = { ...first, spec: payload({ other: true }), deployedBy: "bob" }
      expect(comparable(yield* store.deployTask(second))).toStrictEqual(comparable(first))
      expect(comparable(Option.getOrThrow(yield* store.getTask(first.key)))).toStrictEqual(comparable(first))
    })))

  it.effect("lists the latest version of each task in scope, filtered, ordered and paged; and a task's versions", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      yield* store.deployTask(task("a.task", "v1", 1, { deployedBy: "alice", entrypoint: true }))
      yield* store.deployTask(task("a.task", "v2", 5, { deployedBy: "bob", entrypoint: false }))
      yield* store.deployTask(task("b.task", "v1", 3, { deployedBy: "alice", entrypoint: true }))
      yield* store.deployTask(task("c.task", "v9", 4))
      yield* store.deployTask(task("c.task", "v10", 4))
      yield* store.deployTask(taskRecord({ key: taskKey({ project: "other", name: "a.task" }), createdAt: at(6) }))
      // CreateRun records its task in the same table.
      const view = runView({ createdAt: at(2), task: { org: "", project: "proj", domain: "development", name: "d.task", version: "r1" } })
      yield* store.createRun({ view, task: taskRecord({ view }) })
      const list = (query: CatalogQuery<TaskField>, scope: Parameters<RunStore["Type"]["listTasks"]>[0] = { kind: "project", project: "proj", domain: "development" }) =>
        Effect.map(store.listTasks(scope, query), (page) => page.items.map((item) => `${item.key.name}@${item.key.version}`))
      const q = (overrides: Partial<ListRequestInput>) => queryOf(taskList, overrides)
      expect(yield* list(yield* q({}))).toEqual(["a.task@v2", "c.task@v9", "b.task@v1", "d.task@r1"])
      expect(yield* list(yield* q({}), { kind: "all" })).toEqual(["a.task@v1", "a.task@v2", "c.task@v9", "b.task@v1", "d.task@r1"])
      expect(yield* list(yield* q({ filters: [{ function: 0, field: "deployed_by", values: ["alice"] }] }))).toEqual(["b.task@v1"])
      expect(yield* list(yield* q({ filters: [{ function: 0, field: "is_entrypoint", values: ["false"] }] }))).toEqual(["a.task@v2", "c.task@v9", "d.task@r1"])
      expect(yield* list(yield* q({ sortBy: { key: "name", direction: "ASC" } }))).toEqual(["a.task@v2", "b.task@v1", "c.task@v9", "d.task@r1"])
      expect(yield* list(yield* q({ filters: [{ function: 2, field: "deployed_at", values: ["2025-01-02T03:04:08.678Z"] }] }))).toEqual(["a.task@v2", "c.task@v9"])
      const first = yield* store.listTasks({ kind: "project", project: "proj", domain: "development" }, yield* q({ limit: 3 }))
      expect(first.items).toHaveLength(3)
      expect(first.next).toBeDefined()
      const versions = yield* store.listTaskVersions({ project: "proj", domain: "development", name: "c.task" }, yield* queryOf(versionList))
      expect(versions.items.map((item) => item.key.version)).toEqual(["v9", "v10"])
      const oldest = yield* store.listTaskVersions(
        { project: "proj", domain: "development", name: "a.task" },
        yield* queryOf(versionList, { sortBy: { key: "created_at", direction: "ASC" } })
      )
      expect(oldest.items.map((item) => item.key.version)).toEqual(["v1", "v2"])
    })))
}
