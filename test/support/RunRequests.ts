import { create, type MessageInitShape } from "@bufbuild/protobuf"
import { type CreateRunRequest, CreateRunRequestSchema } from "#gen/flyteidl2/workflow/run_service_pb.js"
import { LiteralSchema } from "#gen/flyteidl2/core/literals_pb.js"
import { TaskSpecSchema } from "#gen/flyteidl2/task/task_definition_pb.js"

export const project = { organization: "", name: "flytesnacks", domain: "development" }

export const integer = (value: number) =>
  create(LiteralSchema, {
    value: { case: "scalar", value: { value: { case: "primitive", value: { value: { case: "integer", value: BigInt(value) } } } } }
  })

/** A task spec like the test client's: a template with an interface and a container, one default input. */
export const taskSpec = (name = "hello.main", version = "v1") =>
  create(TaskSpecSchema, {
    taskTemplate: {
      id: { resourceType: 1, org: "", project: project.name, domain: project.domain, name, version },
      type: "python",
      interface: {
        inputs: {
          variables: [
            { key: "x", value: { type: { type: { case: "simple", value: 1 } }, description: "x" } },
            { key: "y", value: { type: { type: { case: "simple", value: 1 } }, description: "y" } }
          ]
        }
      },
      target: { case: "container", value: { image: "python:3.12", args: ["run", name] } }
    },
    defaultInputs: [
      { name: "y", parameter: { var: { type: { type: { case: "simple", value: 1 } } }, behavior: { case: "default", value: integer(5) } } }
    ],
    shortName: name.split(".").at(-1) ?? name,
    environment: { name: "default-env" }
  })

/** CreateRun with an explicit name, a task spec and inline inputs. */
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
