import { Clock, Context, Effect, Layer, Option } from "effect"
import { RunStore, type StoreUnavailable } from "../ports/RunStore.js"
import { encodeCatalogToken, parseCatalogFilter, parseCatalogRequest } from "./CatalogQuery.js"
import { AlreadyExists, InvalidArgument, NotFound } from "./Errors.js"
import { parseFilterExpression } from "./FilterExpression.js"
import type { ListRequestInput } from "./ListRequest.js"
import {
  isProjectState,
  maxProjectDescriptionLength,
  maxProjectNameLength,
  projectIdProblem,
  projectList,
  type ProjectRecord,
  type ProjectState
} from "./Project.js"
import type { ListPage } from "./Runs.js"

/** The settings the project use cases read. */
export class ProjectSettings extends Context.Tag("runs/ProjectSettings")<ProjectSettings, {
  /** The domains of every project that has none of its own (`runs.domains`). */
  readonly domains: ReadonlyArray<string>
}>() {}

/** A project as a client sends it (CreateProject, UpdateProject). */
export interface ProjectInput {
  readonly id: string
  readonly name: string
  readonly description: string
  readonly labels: ReadonlyArray<readonly [string, string]>
  /** The `ProjectState` number as sent. */
  readonly state: number
  readonly org: string
  readonly domains: ReadonlyArray<string>
}

/** A project as clients see it: its domains are its own or the configured ones. */
export interface ProjectView extends Omit<ProjectRecord, "domains"> {
  readonly domains: ReadonlyArray<string>
}

/** The use cases of ProjectService. */
export class Projects extends Context.Tag("runs/Projects")<Projects, {
  readonly create: (input: ProjectInput) => Effect.Effect<void, InvalidArgument | AlreadyExists | StoreUnavailable>
  /** Name, description, labels and state; a project's domains are not changed this way. */
  readonly update: (input: ProjectInput) => Effect.Effect<void, InvalidArgument | NotFound | StoreUnavailable>
  readonly get: (id: string) => Effect.Effect<ProjectView, InvalidArgument | NotFound | StoreUnavailable>
  /** `filters` is a filter expression (see FilterExpression), applied with the request's own filters. */
  readonly list: (
    request: ListRequestInput,
    filters: string
  ) => Effect.Effect<ListPage<ProjectView>, InvalidArgument | StoreUnavailable>
}>() {}

const invalid = (message: string) => Effect.fail(new InvalidArgument({ message }))

/** A new id must be one a run's project can be; an existing one (runs may have named it before any check) need
 * only be given. */
const checkId = (id: string, path: string, existing: boolean) => {
  const problem = existing ? (id === "" ? "must not be empty" : undefined) : projectIdProblem(id)
  const shown = JSON.stringify(id.length <= 100 ? id : `${id.slice(0, 100)}…`)
  return problem === undefined ? Effect.void : invalid(`${path}: ${shown} ${problem}`)
}

/** The checks of CreateProject and UpdateProject on what they write. */
const checkInput = (input: ProjectInput, existing: boolean) =>
  Effect.gen(function*() {
    yield* checkId(input.id, "project.id", existing)
    if (input.name.length > maxProjectNameLength) {
      return yield* invalid(`project.name: must be at most ${maxProjectNameLength} characters (has ${input.name.length})`)
    }
    if (input.description.length > maxProjectDescriptionLength) {
      return yield* invalid(
        `project.description: must be at most ${maxProjectDescriptionLength} characters (has ${input.description.length})`
      )
    }
    if (input.labels.some(([key]) => key === "")) return yield* invalid("project.labels: a label key must not be empty")
    if (!isProjectState(input.state)) return yield* invalid(`project.state: unknown project state ${input.state}`)
    const blank = input.domains.findIndex((domain) => domain === "")
    if (blank >= 0) return yield* invalid(`project.domains[${blank}].id: must not be empty`)
    return input.state as ProjectState
  })

export const make = Effect.gen(function*() {
  const store = yield* RunStore
  const settings = yield* ProjectSettings
  const now = Effect.map(Clock.currentTimeMillis, (millis) => new Date(millis))
  const view = (project: ProjectRecord): ProjectView => ({
    ...project,
    domains: project.domains !== undefined && project.domains.length > 0 ? project.domains : settings.domains
  })
  const notFound = (id: string) => new NotFound({ message: `project ${id} not found` })

  return Projects.of({
    create: Effect.fn("Projects.create")(function*(input) {
      const state = yield* checkInput(input, false)
      const at = yield* now
      yield* store.createProject({
        id: input.id,
        name: input.name === "" ? input.id : input.name,
        description: input.description,
        labels: input.labels,
        state,
        org: input.org,
        domains: input.domains.length > 0 ? input.domains : undefined,
        stored: true,
        createdAt: at,
        updatedAt: at
      }).pipe(
        Effect.catchTag("ProjectExists", () =>
          Effect.fail(new AlreadyExists({ message: `project ${input.id} already exists` })))
      )
    }),

    update: Effect.fn("Projects.update")(function*(input) {
      const state = yield* checkInput(input, true)
      const found = yield* store.getProject(input.id)
      if (Option.isNone(found)) return yield* notFound(input.id)
      const current = found.value
      const at = yield* now
      yield* store.saveProject({
        ...current,
        name: input.name === "" ? current.name : input.name,
        description: input.description,
        labels: input.labels,
        state,
        org: current.stored ? current.org : input.org,
        stored: true,
        createdAt: current.createdAt ?? at,
        updatedAt: at
      })
    }),

    get: Effect.fn("Projects.get")(function*(id) {
      yield* checkId(id, "id", true)
      const found = yield* store.getProject(id)
      if (Option.isNone(found)) return yield* notFound(id)
      return view(found.value)
    }),

    list: Effect.fn("Projects.list")(function*(request, filters) {
      const expression = yield* parseFilterExpression(filters)
      const extra = yield* Effect.forEach(expression, (filter) => parseCatalogFilter(projectList, filter))
      const query = yield* parseCatalogRequest(projectList, request, extra)
      const page = yield* store.listProjects(query)
      return { items: page.items.map(view), token: encodeCatalogToken(projectList, query, page.next) }
    })
  })
})

/** Needs RunStore and ProjectSettings. */
export const layer = Layer.effect(Projects, make)
