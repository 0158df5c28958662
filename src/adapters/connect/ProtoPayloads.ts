import { create } from "@bufbuild/protobuf"
import { Effect, Layer } from "effect"
import { InputsSchema, OutputReferencesSchema } from "#gen/flyteidl2/task/common_pb.js"
import { RawDataStorageSchema, RunSpecSchema } from "#gen/flyteidl2/task/run_pb.js"
import { TaskSpecSchema } from "#gen/flyteidl2/task/task_definition_pb.js"
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt"
import { InvalidArgument } from "../../domain/Errors.js"
import type { Payload } from "../../domain/Payload.js"
import { Payloads } from "../../ports/Payloads.js"
import { fromPayload, readPayload, toPayload } from "./ProtoCodec.js"

/** A protobuf time at millisecond precision, or undefined when unset. */
export const optionalDate = (time: Timestamp | undefined): Date | undefined =>
  time === undefined ? undefined : timestampDate(time)

const decode = <A>(what: string, f: () => A) =>
  Effect.try({ try: f, catch: () => new InvalidArgument({ message: `${what}: cannot be decoded` }) })

/** The `Payloads` port over the flyteidl2 messages. */
export const make = Payloads.of({
  // Payloads only read here: a request's own message is taken as it is (`readPayload`), not decoded again.
  describeTaskSpec: (payload) =>
    Effect.flatMap(decode("task_spec", () => readPayload(TaskSpecSchema, payload)), (spec) => {
      const id = spec.taskTemplate?.id
      if (id === undefined || id.name === "") {
        return Effect.fail(new InvalidArgument({ message: "task_spec.task_template.id.name: a task spec must name its task" }))
      }
      return Effect.succeed({
        task: { org: id.org, project: id.project, domain: id.domain, name: id.name, version: id.version },
        taskType: spec.taskTemplate?.type ?? "",
        shortName: spec.shortName === "" ? undefined : spec.shortName,
        environmentName: spec.environment?.name === undefined || spec.environment.name === ""
          ? undefined
          : spec.environment.name
      })
    }),

  inputsWithDefaults: (inputs, taskSpec) =>
    Effect.gen(function*() {
      const given = inputs === undefined
        ? create(InputsSchema, {})
        : yield* decode("inputs", () => readPayload(InputsSchema, inputs))
      const spec = yield* decode("task_spec", () => readPayload(TaskSpecSchema, taskSpec))
      const present = new Set(given.literals.map((literal) => literal.name))
      const defaults = spec.defaultInputs.flatMap((input) =>
        !present.has(input.name) && input.parameter?.behavior.case === "default"
          ? [{ name: input.name, value: input.parameter.behavior.value }]
          : []
      )
      return toPayload(InputsSchema, create(InputsSchema, {
        literals: [...given.literals, ...defaults],
        context: given.context
      }))
    }),

  effectiveRunSpec: (runSpec, storagePrefix) =>
    Effect.map(
      runSpec === undefined
        ? Effect.succeed(create(RunSpecSchema, {}))
        : decode("run_spec", () => fromPayload(RunSpecSchema, runSpec)),
      (spec) => {
        if ((spec.rawDataStorage?.rawDataPrefix ?? "") === "") {
          spec.rawDataStorage = create(RawDataStorageSchema, { rawDataPrefix: storagePrefix })
        }
        return { spec: toPayload(RunSpecSchema, spec), cluster: spec.cluster === "" ? undefined : spec.cluster }
      }
    ),

  outputUri: (outputs: Payload) => {
    const uri = fromPayload(OutputReferencesSchema, outputs).outputUri
    return uri === "" ? undefined : uri
  }
})

export const layer = Layer.succeed(Payloads, make)
