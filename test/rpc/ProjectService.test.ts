import { Code } from "@connectrpc/connect"
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { ProjectService, ProjectState } from "#gen/flyteidl2/project/project_service_pb.js"
import { RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import * as MemoryRunStore from "../../src/adapters/memory/MemoryRunStore.js"
import * as SqlRunStore from "../../src/adapters/sql/SqlRunStore.js"
import { backends, describeBackends } from "../support/backends.js"
import { createNamed } from "../support/RunRequests.js"
import { layerTestServer } from "../support/TestApp.js"
import { call, failure, jsonClient } from "../support/WebUiClients.js"

const defaultDomains = [
  { id: "development", name: "development" },
  { id: "staging", name: "staging" },
  { id: "production", name: "production" }
]

describeBackends("ProjectService", backends({ memory: MemoryRunStore.layer, sql: SqlRunStore.layer }), (backend) => {
  const server = () => layerTestServer(backend.layer)

  it.effect("CreateProject stores a project that GetProject reads; a taken id is AlreadyExists, an unknown one NotFound", () =>
    Effect.gen(function*() {
      const projects = yield* jsonClient(ProjectService)
      // The UI asks whether an id is free before creating it.
      expect((yield* failure(() => projects.getProject({ id: "ml-team", org: "testorg" })))?.code).toBe(Code.NotFound)
      yield* call(() =>
        projects.createProject({
          project: { id: "ml-team", name: "ML team", description: "models", labels: { values: { owner: "ana" } }, org: "testorg" }
        })
      )
      const { project } = yield* call(() => projects.getProject({ id: "ml-team", org: "testorg" }))
      expect(project).toMatchObject({
        id: "ml-team",
        name: "ML team",
        description: "models",
        labels: { values: { owner: "ana" } },
        state: ProjectState.ACTIVE,
        org: "testorg"
      })
      expect(project?.domains.map((domain) => ({ id: domain.id, name: domain.name }))).toEqual(defaultDomains)
      const again = yield* failure(() => projects.createProject({ project: { id: "ml-team", name: "Other" } }))
      expect(again?.code).toBe(Code.AlreadyExists)
      expect(again?.rawMessage).toBe("project ml-team already exists")
      const missing = yield* failure(() => projects.getProject({ id: "nope" }))
      expect(missing?.code).toBe(Code.NotFound)
      expect(missing?.rawMessage).toBe("project nope not found")
    }).pipe(Effect.provide(server())))

  it.effect("ids, names and states that cannot be used are InvalidArgument naming the field", () =>
    Effect.gen(function*() {
      const projects = yield* jsonClient(ProjectService)
      const cases: ReadonlyArray<readonly [() => Promise<unknown>, string]> = [
        [() => projects.createProject({ project: { id: "Bad_Id", name: "x" } }), "project.id"],
        [() => projects.createProject({ project: { id: "", name: "x" } }), "project.id"],
        [() => projects.createProject({ project: { id: "a".repeat(64) } }), "project.id"],
        [() => projects.createProject({ project: { id: "ok", name: "n".repeat(65) } }), "project.name"],
        [() => projects.createProject({}), "project"],
        [() => projects.getProject({ id: "" }), "id"],
        [() => projects.listProjects({ filters: "eq(colour,red)" }), "colour"],
        [() => projects.listProjects({ filters: "nonsense" }), "nonsense"],
        [() => projects.listProjects({ filters: "eq(state,sleeping)" }), "state"],
        [() => projects.listProjects({ token: "garbage" }), "token"]
      ]
      for (const [request, field] of cases) {
        const error = yield* failure(request)
        expect(error?.code, field).toBe(Code.InvalidArgument)
        expect(error?.rawMessage).toContain(field)
      }
    }).pipe(Effect.provide(server())))

  it.effect("ListProjects lists created projects and the projects runs name (name = id), by id; filters and pages", () =>
    Effect.gen(function*() {
      const projects = yield* jsonClient(ProjectService)
      const runs = yield* jsonClient(RunService)
      yield* call(() => runs.createRun(createNamed("in-flytesnacks")))
      yield* call(() => projects.createProject({ project: { id: "alpha", name: "Alpha" } }))
      yield* call(() => projects.createProject({ project: { id: "zulu", name: "Zulu" } }))
      const { projects: all } = yield* call(() => projects.listProjects({ org: "testorg" }))
      expect(all?.projects.map((project) => [project.id, project.name])).toEqual([
        ["alpha", "Alpha"],
        ["flytesnacks", "flytesnacks"],
        ["zulu", "Zulu"]
      ])
      expect(all?.token).toBe("")
      // A project that only runs named can be read, and is taken.
      const { project } = yield* call(() => projects.getProject({ id: "flytesnacks" }))
      expect(project?.domains.map((domain) => domain.id)).toEqual(defaultDomains.map((domain) => domain.id))
      expect((yield* failure(() => projects.createProject({ project: { id: "flytesnacks" } })))?.code).toBe(Code.AlreadyExists)
      // Archive one (the UI's archive button), then list the active ones.
      yield* call(() => projects.updateProject({ project: { id: "zulu", name: "Zulu", state: ProjectState.ARCHIVED } }))
      const active = yield* call(() => projects.listProjects({ filters: "eq(state,0)" }))
      expect(active.projects?.projects.map((p) => p.id)).toEqual(["alpha", "flytesnacks"])
      const named = yield* call(() => projects.listProjects({ filters: "contains_case_insensitive(name,ALP)+ne(state,1)" }))
      expect(named.projects?.projects.map((p) => p.id)).toEqual(["alpha"])
      // Names compare by code point: lower case after upper case.
      const descending = yield* call(() => projects.listProjects({ sortBy: { key: "name", direction: 0 } }))
      expect(descending.projects?.projects.map((p) => p.id)).toEqual(["flytesnacks", "zulu", "alpha"])
      // Pages of one, following the tokens.
      const seen: Array<string> = []
      let token = ""
      do {
        const page = yield* call(() => projects.listProjects({ limit: 1, token }))
        seen.push(...(page.projects?.projects.map((p) => p.id) ?? []))
        token = page.projects?.token ?? ""
      } while (token !== "" && seen.length < 10)
      expect(seen).toEqual(["alpha", "flytesnacks", "zulu"])
      // A picker asking for more than a page holds gets a full page.
      expect((yield* call(() => projects.listProjects({ limit: 1000 }))).projects?.projects).toHaveLength(3)
    }).pipe(Effect.provide(server())))

  it.effect("UpdateProject renames, relabels and archives; a project only runs named becomes stored; unknown ids are NotFound", () =>
    Effect.gen(function*() {
      const projects = yield* jsonClient(ProjectService)
      const runs = yield* jsonClient(RunService)
      yield* call(() => projects.createProject({ project: { id: "beta", name: "Beta", description: "d", labels: { values: { a: "1" } } } }))
      yield* call(() =>
        projects.updateProject({
          project: { id: "beta", name: "Beta 2", description: "new", labels: { values: { b: "2" } }, domains: [{ id: "ignored" }] }
        })
      )
      const { project } = yield* call(() => projects.getProject({ id: "beta" }))
      expect(project).toMatchObject({ name: "Beta 2", description: "new", labels: { values: { b: "2" } }, state: ProjectState.ACTIVE })
      expect(project?.domains.map((domain) => domain.id)).toEqual(defaultDomains.map((domain) => domain.id))
      yield* call(() => projects.updateProject({ project: { id: "beta", state: ProjectState.ARCHIVED } }))
      const archived = yield* call(() => projects.getProject({ id: "beta" }))
      expect(archived.project).toMatchObject({ name: "Beta 2", state: ProjectState.ARCHIVED })
      yield* call(() => runs.createRun(createNamed("named-only")))
      yield* call(() => projects.updateProject({ project: { id: "flytesnacks", name: "Flyte snacks" } }))
      expect((yield* call(() => projects.getProject({ id: "flytesnacks" }))).project?.name).toBe("Flyte snacks")
      // Runs may name projects no new project could be called; they can still be read and renamed.
      yield* call(() =>
        runs.createRun(createNamed("legacy", { id: { case: "runId", value: { org: "", project: "Legacy_Proj", domain: "development", name: "legacy" } } }))
      )
      expect((yield* call(() => projects.getProject({ id: "Legacy_Proj" }))).project?.name).toBe("Legacy_Proj")
      yield* call(() => projects.updateProject({ project: { id: "Legacy_Proj", name: "Legacy" } }))
      expect((yield* call(() => projects.getProject({ id: "Legacy_Proj" }))).project?.name).toBe("Legacy")
      const missing = yield* failure(() => projects.updateProject({ project: { id: "ghost", name: "Ghost" } }))
      expect(missing?.code).toBe(Code.NotFound)
    }).pipe(Effect.provide(server())))

  it.effect("a project created with its own domains keeps them", () =>
    Effect.gen(function*() {
      const projects = yield* jsonClient(ProjectService)
      yield* call(() => projects.createProject({ project: { id: "own", domains: [{ id: "dev", name: "Dev" }, { id: "prod" }] } }))
      const { project } = yield* call(() => projects.getProject({ id: "own" }))
      expect(project?.name).toBe("own")
      expect(project?.domains.map((domain) => domain.id)).toEqual(["dev", "prod"])
    }).pipe(Effect.provide(server())))
})
