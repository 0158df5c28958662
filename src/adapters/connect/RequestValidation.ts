import type { DescMessage, MessageShape } from "@bufbuild/protobuf"
import type { Path } from "@bufbuild/protobuf/reflect"
import { createValidator, type Violation } from "@bufbuild/protovalidate"
import { Data, Effect } from "effect"
import { illFormedValue } from "./WellFormed.js"

export class InvalidRequest extends Data.TaggedError("InvalidRequest")<{
  readonly message: string
  readonly fields: ReadonlyArray<string>
}> {}

/**
 * The IDL's buf.validate rules that real clients break (SPEC 2; reference/real-clients.md section 6).
 * A violation of one of these is dropped; every other rule is enforced. Keyed by
 * `<message type>.<field>` and the rule id that protovalidate reports.
 */
export const relaxedRules: ReadonlyArray<{ readonly field: string; readonly ruleId: string; readonly why: string }> = [
  { field: "*.org", ruleId: "string.min_len", why: "the Python SDK sends an empty org to localhost; org partitions nothing" },
  { field: "*.organization", ruleId: "string.min_len", why: "the Python SDK sends an empty organization" },
  { field: "flyteidl2.workflow.ActionStatus.attempts", ruleId: "uint32.gt", why: "the actions service reports attempts 0" },
  { field: "flyteidl2.workflow.ActionEvent.attempt", ruleId: "uint32.gt", why: "0 counts as attempt 1" },
  { field: "flyteidl2.workflow.TaskAction.spec", ruleId: "required", why: "the actions service may send no spec" },
  { field: "flyteidl2.workflow.TraceAction.spec", ruleId: "required", why: "the SDK's traces are recorded without one (the Go original accepts them)" },
  { field: "flyteidl2.workflow.WatchClusterEventsRequest.attempt", ruleId: "uint32.gt", why: "0 means the latest attempt (web UI)" },
  { field: "flyteidl2.workflow.GetActionLogContextRequest.attempt", ruleId: "uint32.gt", why: "0 means the latest attempt" }
]

const relaxed = new Set(relaxedRules.map((rule) => `${rule.field}#${rule.ruleId}`))

const lastField = (path: Path): string | undefined => {
  const last = path.at(-1)
  if (last === undefined) return undefined
  if (last.kind === "field" || last.kind === "oneof") return `${last.parent.typeName}.${last.name}`
  const owner = path.at(-2)
  return owner !== undefined && owner.kind === "field" ? `${owner.parent.typeName}.${owner.name}` : undefined
}

/** The field path as a client wrote it, e.g. `run_id.name` or `filters[2].values`. */
export const fieldPath = (path: Path): string => {
  let text = ""
  for (const item of path) {
    switch (item.kind) {
      case "field":
      case "oneof":
        text = text === "" ? item.name : `${text}.${item.name}`
        break
      case "extension":
        text = `${text}[${item.typeName}]`
        break
      case "list_sub":
        text = `${text}[${item.index}]`
        break
      case "map_sub":
        text = `${text}[${String(item.key)}]`
        break
    }
  }
  return text
}

const isRelaxed = (violation: Violation): boolean => {
  const field = lastField(violation.field)
  if (field === undefined) return false
  const name = field.slice(field.lastIndexOf(".") + 1)
  return relaxed.has(`${field}#${violation.ruleId}`) || relaxed.has(`*.${name}#${violation.ruleId}`)
}

const validator = createValidator()

/**
 * `validator.validate` with no stack traces taken: an invalid result carries a `ValidationError`, and real
 * clients' requests are "invalid" by a relaxed rule nearly every time (an empty org), so each request would
 * otherwise capture a stack trace nothing reads (100 of them for a batch of 100 events).
 */
const validateUntraced = <Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>) => {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return validator.validate(schema, message)
  } finally {
    Error.stackTraceLimit = limit
  }
}

/** Checks a decoded request against its IDL rules, less the relaxed ones. */
export const validateRequest = <Desc extends DescMessage>(
  schema: Desc,
  message: MessageShape<Desc>
): Effect.Effect<void, InvalidRequest> =>
  Effect.suspend(() => {
    const illFormed = illFormedValue(schema, message)
    if (illFormed !== undefined) {
      return Effect.fail(
        new InvalidRequest({ message: `invalid ${schema.name}: ${illFormed.path}: ${illFormed.problem}`, fields: [illFormed.path] })
      )
    }
    const result = validateUntraced(schema, message)
    if (result.kind === "valid") return Effect.void
    // A rule that cannot be evaluated on these values (CEL arithmetic out of range, say) fails for this input.
    if (result.kind === "error") {
      return Effect.fail(
        new InvalidRequest({ message: `invalid ${schema.name}: its values cannot be checked against the IDL's rules`, fields: [] })
      )
    }
    const violations = result.violations.filter((violation) => !isRelaxed(violation))
    if (violations.length === 0) return Effect.void
    const described = violations.map((violation) => {
      const path = fieldPath(violation.field)
      return { path, text: `${path === "" ? schema.name : path}: ${violation.message}` }
    })
    return Effect.fail(
      new InvalidRequest({
        message: `invalid ${schema.name}: ${described.map((d) => d.text).join("; ")}`,
        fields: described.map((d) => d.path)
      })
    )
  })
