import { create, equals, fromBinary, fromJson, isMessage, toBinary, toJson } from "@bufbuild/protobuf"
import { timestampDate, timestampFromDate, TimestampSchema } from "@bufbuild/protobuf/wkt"
import { describe, expect, it } from "@effect/vitest"
import {
  ActionAttemptSchema,
  ActionStatusSchema,
  ClusterEventSchema,
  PhaseTransitionSchema,
  RunDetailsSchema
} from "#gen/flyteidl2/workflow/run_definition_pb.js"
import type { PayloadReader } from "../../../src/adapters/connect/ProtoCodec.js"
import { buildRunDetails, timestamp } from "../../../src/adapters/connect/RunResponses.js"
import { ActionPhase } from "../../../src/domain/Phase.js"
import { at, attempt, runView } from "../../support/Fixtures.js"

// The fixtures' payloads are not protobuf; these tests are about the builders' own messages.
const emptyMessages: PayloadReader = (schema) => create(schema)

const details = () => {
  const view = runView({ phase: ActionPhase.FAILED })
  const attempts = [
    attempt(1, { phase: ActionPhase.FAILED, logInfo: [], logContext: undefined }),
    attempt(2, { phase: ActionPhase.RUNNING, logInfo: [], logContext: undefined })
  ]
  return { attempts, built: buildRunDetails(view, attempts, emptyMessages) }
}

describe("RunResponses", () => {
  it("timestamp gives the message timestampFromDate gives, before 1970 too", () => {
    for (const date of [new Date(0), new Date(-1), new Date(-1001), at(1), new Date(Date.UTC(1900, 0, 1, 0, 0, 0, 1))]) {
      expect(timestamp(date)).toEqual(timestampFromDate(date))
      expect(isMessage(timestamp(date), TimestampSchema)).toBe(true)
    }
  })

  it("a run's attempts, transitions, cluster events and status are whole messages, which create keeps as they are", () => {
    const { attempts, built } = details()
    // What Connect does with a handler's answer.
    const action = create(RunDetailsSchema, built).action!
    expect(action.status).toBe(built.action!.status)
    expect(isMessage(action.status, ActionStatusSchema)).toBe(true)
    expect(action.attempts).toHaveLength(2)
    action.attempts.forEach((message, i) => {
      expect(message).toBe(built.action!.attempts![i])
      expect(isMessage(message, ActionAttemptSchema)).toBe(true)
      const record = attempts[i]!
      expect(message.phaseTransitions.map((t) => [t.phase, timestampDate(t.startTime!), t.endTime && timestampDate(t.endTime)]))
        .toEqual(record.phaseTransitions.map((t) => [t.phase, t.startTime, t.endTime]))
      expect(message.clusterEvents.map((e) => [timestampDate(e.occurredAt!), e.message]))
        .toEqual(record.clusterEvents.map((e) => [e.occurredAt, e.message]))
      for (const transition of message.phaseTransitions) expect(isMessage(transition, PhaseTransitionSchema)).toBe(true)
      for (const event of message.clusterEvents) expect(isMessage(event, ClusterEventSchema)).toBe(true)
    })
    // The open attempt has no end time: the field is unset, not an empty timestamp.
    expect(action.attempts[1]!.endTime).toBeUndefined()
    expect(action.attempts[0]!.endTime).toEqual(timestampFromDate(attempts[0]!.endTime!))
  })

  it("the details encode and decode, in binary and JSON, to the same message", () => {
    const message = create(RunDetailsSchema, details().built)
    expect(equals(RunDetailsSchema, fromBinary(RunDetailsSchema, toBinary(RunDetailsSchema, message)), message)).toBe(true)
    expect(equals(RunDetailsSchema, fromJson(RunDetailsSchema, toJson(RunDetailsSchema, message)), message)).toBe(true)
  })
})
