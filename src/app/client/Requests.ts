import { create } from "@bufbuild/protobuf"
import { LiteralSchema } from "#gen/flyteidl2/core/literals_pb.js"
import { TaskSpecSchema } from "#gen/flyteidl2/task/task_definition_pb.js"

/** The project the test client and the tests use. */
export const project = { organization: "", name: "flytesnacks", domain: "development" }

export const integer = (value: number) =>
  create(LiteralSchema, {
    value: { case: "scalar", value: { value: { case: "primitive", value: { value: { case: "integer", value: BigInt(value) } } } } }
  })

/** A task spec as the SDK sends one: a template with an interface and a container, one default input. */
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
