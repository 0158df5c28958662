import { create, type DescMessage } from "@bufbuild/protobuf"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import {
  RecordActionEventsRequestSchema,
  RecordActionRequestSchema,
  UpdateActionStatusRequestSchema
} from "#gen/flyteidl2/workflow/internal_run_service_pb.js"
import {
  CreateRunRequestSchema,
  GetActionLogContextRequestSchema,
  GetRunDetailsRequestSchema,
  ListRunsRequestSchema,
  WatchClusterEventsRequestSchema,
  WatchRunsRequestSchema
} from "#gen/flyteidl2/workflow/run_service_pb.js"
import { registry } from "../../../src/adapters/connect/ProtoCodec.js"
import { relaxedRules, validateRequest } from "../../../src/adapters/connect/RequestValidation.js"

const sdkRunId = { org: "", project: "flytesnacks", domain: "development", name: "r1" }
const actionId = { run: sdkRunId, name: "a0" }

const outcome = <D extends DescMessage>(schema: D, init: Parameters<typeof create<D>>[1]) =>
  Effect.either(validateRequest(schema, create(schema, init)))

describe("request validation", () => {
  it("every relaxed rule names a field that exists in the IDL", () => {
    for (const rule of relaxedRules.filter((rule) => !rule.field.startsWith("*."))) {
      const dot = rule.field.lastIndexOf(".")
      const message = registry.getMessage(rule.field.slice(0, dot))
      expect(message, rule.field).toBeDefined()
      expect(message?.fields.some((field) => field.name === rule.field.slice(dot + 1)), rule.field).toBe(true)
    }
  })

  it.effect("accepts the Python SDK's empty org on a run id and a project id", () =>
    Effect.gen(function*() {
      expect(Either.isRight(yield* outcome(GetRunDetailsRequestSchema, { runId: sdkRunId }))).toBe(true)
      const list = yield* outcome(ListRunsRequestSchema, {
        scopeBy: { case: "projectId", value: { organization: "", name: "flytesnacks", domain: "development" } }
      })
      expect(Either.isRight(list)).toBe(true)
      const createRun = yield* outcome(CreateRunRequestSchema, {
        id: { case: "runId", value: sdkRunId },
        task: {
          case: "taskSpec",
          value: {
            taskTemplate: {
              id: { resourceType: 1, project: "flytesnacks", domain: "development", name: "hello.main", version: "v1" },
              type: "python"
            }
          }
        }
      })
      expect(Either.isRight(createRun)).toBe(true)
    }))

  it.effect("accepts a trigger name with an empty org", () =>
    Effect.gen(function*() {
      const list = yield* outcome(ListRunsRequestSchema, {
        scopeBy: { case: "triggerName", value: { org: "", project: "p", domain: "d", name: "n", taskName: "t" } }
      })
      expect(Either.isRight(list)).toBe(true)
    }))

  it.effect("accepts an org scope with an empty org", () =>
    Effect.gen(function*() {
      expect(Either.isRight(yield* outcome(ListRunsRequestSchema, { scopeBy: { case: "org", value: "" } }))).toBe(true)
      expect(Either.isRight(yield* outcome(WatchRunsRequestSchema, { target: { case: "org", value: "" } }))).toBe(true)
    }))

  it.effect("accepts attempt 0 where it means the latest attempt (web UI)", () =>
    Effect.gen(function*() {
      expect(Either.isRight(yield* outcome(WatchClusterEventsRequestSchema, { id: actionId, attempt: 0 }))).toBe(true)
      expect(Either.isRight(yield* outcome(GetActionLogContextRequestSchema, { actionId, attempt: 0 }))).toBe(true)
    }))

  it.effect("accepts the actions service's shapes: a task action without spec or task org, status attempts 0", () =>
    Effect.gen(function*() {
      const record = yield* outcome(RecordActionRequestSchema, {
        actionId: { run: sdkRunId, name: "child-1" },
        parent: "a0",
        inputUri: "file:///tmp/in",
        spec: { case: "task", value: { id: { project: "p", domain: "d", name: "t", version: "v1" } } }
      })
      expect(Either.isRight(record)).toBe(true)
      const status = yield* outcome(UpdateActionStatusRequestSchema, { actionId, status: { phase: 4, attempts: 0 } })
      expect(Either.isRight(status)).toBe(true)
      const events = yield* outcome(RecordActionEventsRequestSchema, {
        events: [{ id: actionId, attempt: 0, phase: 4, version: 0 }]
      })
      expect(Either.isRight(events)).toBe(true)
    }))

  it.effect("rejects what the rules still require, naming the field path", () =>
    Effect.gen(function*() {
      const missing = yield* outcome(GetRunDetailsRequestSchema, {})
      expect(Either.isLeft(missing) && missing.left.fields).toEqual(["run_id"])
      const emptyName = yield* outcome(GetRunDetailsRequestSchema, { runId: { ...sdkRunId, name: "" } })
      expect(Either.isLeft(emptyName) && emptyName.left.message).toContain("run_id.name")
      const noTask = yield* outcome(CreateRunRequestSchema, { id: { case: "runId", value: sdkRunId } })
      expect(Either.isLeft(noTask) && noTask.left.fields).toContain("task")
      const noScope = yield* outcome(ListRunsRequestSchema, {})
      expect(Either.isLeft(noScope) && noScope.left.message).toContain("scope_by")
    }))
})
