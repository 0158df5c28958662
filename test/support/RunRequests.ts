import { create, type MessageInitShape } from "@bufbuild/protobuf"
import { type CreateRunRequest, CreateRunRequestSchema } from "#gen/flyteidl2/workflow/run_service_pb.js"
import { integer, project, taskSpec } from "../../src/app/client/Requests.js"

export { integer, project, taskSpec }

/** CreateRun scoped by project: the server names the run. */
export const createInProject = (
  overrides: Pick<MessageInitShape<typeof CreateRunRequestSchema>, "task" | "inputWrapper" | "runSpec"> = {}
): CreateRunRequest => createNamed("unused", { id: { case: "projectId", value: project }, ...overrides })

export const createNamed = (
  name: string,
  overrides: Pick<MessageInitShape<typeof CreateRunRequestSchema>, "id" | "task" | "inputWrapper" | "runSpec"> = {}
): CreateRunRequest =>
  create(CreateRunRequestSchema, {
    id: { case: "runId", value: { org: "", project: project.name, domain: project.domain, name } },
    task: { case: "taskSpec", value: taskSpec() },
    inputWrapper: { case: "inputs", value: { literals: [{ name: "x", value: integer(1) }] } },
    source: 2,
    ...overrides
  })
