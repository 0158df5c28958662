import { create, type MessageInitShape } from "@bufbuild/protobuf"
import type { ServiceImpl } from "@connectrpc/connect"
import { Effect } from "effect"
import { ListRequestSchema } from "#gen/flyteidl2/common/list_pb.js"
import { type Project, ProjectSchema, ProjectService } from "#gen/flyteidl2/project/project_service_pb.js"
import { InvalidArgument } from "../../domain/Errors.js"
import { maxLimit } from "../../domain/ListRequest.js"
import { type ProjectInput, Projects, type ProjectView } from "../../domain/Projects.js"
import type { EffectHandlers } from "./EffectHandlers.js"
import { listRequestInput } from "./RunRequests.js"

const projectInput = (project: Project | undefined): Effect.Effect<ProjectInput, InvalidArgument> =>
  project === undefined
    ? Effect.fail(new InvalidArgument({ message: "project: a project is required" }))
    : Effect.succeed({
      id: project.id,
      name: project.name,
      description: project.description,
      labels: Object.entries(project.labels?.values ?? {}),
      state: project.state,
      org: project.org,
      domains: project.domains.map((domain) => domain.id)
    })

const buildProject = (project: ProjectView): MessageInitShape<typeof ProjectSchema> => ({
  id: project.id,
  name: project.name,
  description: project.description,
  ...(project.labels.length === 0 ? {} : { labels: { values: Object.fromEntries(project.labels) } }),
  state: project.state,
  org: project.org,
  domains: project.domains.map((domain) => ({ id: domain, name: domain }))
})

/** ProjectService: requests mapped to the `Projects` use cases. */
export const projectServiceHandlers = (
  handlers: EffectHandlers<Projects>
): Partial<ServiceImpl<typeof ProjectService>> => ({
  createProject: handlers.unary(ProjectService.method.createProject, (request) =>
    Effect.flatMap(projectInput(request.project), (input) => Effect.flatMap(Projects, (projects) => projects.create(input)))
      .pipe(Effect.as({}))),

  updateProject: handlers.unary(ProjectService.method.updateProject, (request) =>
    Effect.flatMap(projectInput(request.project), (input) => Effect.flatMap(Projects, (projects) => projects.update(input)))
      .pipe(Effect.as({}))),

  getProject: handlers.unary(ProjectService.method.getProject, (request) =>
    Effect.flatMap(Projects, (projects) => projects.get(request.id)).pipe(
      Effect.map((project) => ({ project: buildProject(project) }))
    )),

  listProjects: handlers.unary(ProjectService.method.listProjects, (request) =>
    Effect.flatMap(Projects, (projects) =>
      projects.list(
        // A project picker may ask for more than a page holds; it gets a full page and a token for the rest.
        listRequestInput(
          create(ListRequestSchema, { limit: Math.min(request.limit, maxLimit), token: request.token,
            ...(request.sortBy === undefined ? {} : { sortBy: request.sortBy }) })
        ),
        request.filters
      )).pipe(
        Effect.map((page) => ({ projects: { projects: page.items.map(buildProject), token: page.token } }))
      ))
})
