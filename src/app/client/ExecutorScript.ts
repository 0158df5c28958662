import { create, type MessageInitShape } from "@bufbuild/protobuf"
import { timestampFromDate } from "@bufbuild/protobuf/wkt"
import type { Client } from "@connectrpc/connect"
import type { InternalRunService } from "#gen/flyteidl2/workflow/internal_run_service_pb.js"
import { ActionEventSchema } from "#gen/flyteidl2/workflow/run_definition_pb.js"

const base = Date.UTC(2025, 5, 1, 12, 0, 0)
const time = (second: number) => timestampFromDate(new Date(base + second * 1000))

export type Step =
  | { readonly kind: "record"; readonly request: Parameters<Client<typeof InternalRunService>["recordAction"]>[0] }
  | { readonly kind: "status"; readonly request: Parameters<Client<typeof InternalRunService>["updateActionStatus"]>[0] }
  | { readonly kind: "events"; readonly events: ReadonlyArray<MessageInitShape<typeof ActionEventSchema>> }

/**
 * The life of a real run, as an executor reports it: the root runs; two child tasks are recorded (as the
 * actions service does: no org, no task spec); one fails on attempt 1 and succeeds on attempt 2; a trace is
 * recorded; the root succeeds. Times are fixed, so every replay yields the same details.
 */
export const scriptedRun = (run: { project: string; domain: string; name: string }) => {
  const id = (name: string) => ({ run: { org: "", ...run }, name })
  const event = (
    name: string,
    attempt: number,
    phase: number,
    second: number,
    extra: Pick<MessageInitShape<typeof ActionEventSchema>, "logInfo" | "logContext" | "clusterEvents" | "errorInfo" | "outputs"> = {}
  ) => create(ActionEventSchema, {
    id: id(name),
    attempt,
    phase,
    version: 0,
    updatedTime: time(second),
    reportedTime: time(second),
    cluster: "cluster-a",
    ...extra
  })
  const status = (name: string, phase: number, attempts: number, second?: number) => ({
    actionId: id(name),
    status: { phase, attempts, ...(second === undefined ? {} : { endTime: time(second) }) }
  })
  const task = (name: string) => ({
    actionId: id(name),
    parent: "a0",
    inputUri: `file:///tmp/${run.name}/${name}/inputs.pb`,
    spec: { case: "task" as const, value: { id: { project: run.project, domain: run.domain, name: `wf.${name}`, version: "v1" } } }
  })
  const records: ReadonlyArray<Step> = [
    { kind: "record", request: task("t1") },
    { kind: "record", request: task("t2") },
    {
      kind: "record",
      request: {
        actionId: id("trace-1"),
        parent: "t2",
        spec: {
          case: "trace",
          value: {
            name: "fetch",
            phase: 0,
            startTime: time(40),
            endTime: time(41),
            outputs: { outputUri: `file:///tmp/${run.name}/trace-1/outputs.pb` },
            spec: { interface: {} }
          }
        }
      }
    }
  ]
  const reports: ReadonlyArray<Step> = [
    { kind: "status", request: status("a0", 4, 1) },
    { kind: "events", events: [event("a0", 1, 1, 0), event("a0", 1, 4, 1)] },
    { kind: "status", request: status("t1", 3, 1) },
    {
      kind: "events",
      events: [
        event("t1", 1, 1, 10),
        event("t1", 1, 4, 12, {
          logInfo: [{ name: "pod", uri: "https://logs/t1-1" }],
          logContext: { primaryPodName: "t1-1" },
          clusterEvents: [{ occurredAt: time(11), message: "Pulling image" }, { occurredAt: time(12), message: "Started" }]
        }),
        event("t1", 1, 6, 20, {
          errorInfo: { message: "OOMKilled", kind: 2 },
          clusterEvents: [{ occurredAt: time(19), message: "Container killed" }]
        })
      ]
    },
    { kind: "status", request: status("t1", 6, 1, 20) },
    { kind: "status", request: status("t1", 4, 2) },
    {
      kind: "events",
      events: [
        event("t1", 2, 1, 21),
        event("t1", 2, 4, 22, { clusterEvents: [{ occurredAt: time(22), message: "Started again" }] }),
        event("t1", 2, 5, 30, { outputs: { outputUri: `file:///tmp/${run.name}/t1/2` } })
      ]
    },
    { kind: "status", request: status("t1", 5, 2, 30) },
    { kind: "status", request: status("t2", 4, 1) },
    { kind: "events", events: [event("t2", 1, 4, 35), event("t2", 1, 5, 45)] },
    { kind: "status", request: status("t2", 5, 1, 45) },
    { kind: "events", events: [event("a0", 1, 5, 50)] },
    { kind: "status", request: status("a0", 5, 1, 50) }
  ]
  return { records, reports }
}

/** Sends each step through the unary RPCs and returns the in-band status codes. */
export const runSteps = async (client: Client<typeof InternalRunService>, steps: ReadonlyArray<Step>) => {
  const codes: Array<number> = []
  for (const step of steps) {
    const response = step.kind === "record"
      ? await client.recordAction(step.request)
      : step.kind === "status"
      ? await client.updateActionStatus(step.request)
      : await client.recordActionEvents({ events: [...step.events] })
    codes.push(response.status?.code ?? -1)
  }
  return codes
}
