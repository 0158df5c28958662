import { create, type MessageInitShape } from "@bufbuild/protobuf"
import { timestampFromDate } from "@bufbuild/protobuf/wkt"
import type { ActionEventSchema } from "#gen/flyteidl2/workflow/run_definition_pb.js"
import { integer, taskSpec } from "../src/app/client/Requests.js"
import { CreateRunRequestSchema, ListRunsRequestSchema } from "#gen/flyteidl2/workflow/run_service_pb.js"

/** The projects the bench writes to, one per scenario so that none disturbs another's figures. */
export const projects = {
  create: "bench-create",
  details: "bench-details",
  list: "bench-list",
  events: "bench-events",
  watch: "bench-watch",
  fanout: "bench-fanout"
} as const
export const domain = "development"

export const runId = (project: string, name: string) => ({ org: "", project, domain, name })
export const actionId = (project: string, run: string, name: string) => ({ run: runId(project, run), name })

/** CreateRun as the SDK sends it: a task spec (template with interface and container) and inline inputs. */
export const createRunRequest = (project: string, name: string) =>
  create(CreateRunRequestSchema, {
    id: { case: "runId", value: runId(project, name) },
    task: { case: "taskSpec", value: taskSpec("bench.main", "v1") },
    inputWrapper: { case: "inputs", value: { literals: [{ name: "x", value: integer(1) }, { name: "y", value: integer(2) }] } }
  })

/** RecordAction as an executor sends it for a child of the root action `a0`: a task action with its inputs' location. */
export const childActionRequest = (project: string, run: string, name: string) => ({
  actionId: actionId(project, run, name),
  parent: "a0",
  inputUri: `file:///tmp/bench/${run}/${name}/inputs.pb`,
  spec: {
    case: "task" as const,
    value: { id: { project, domain, name: `bench.${name.replace(/\d+$/, "")}`, version: "v1" } }
  }
})

/** The UI's run list: 50 runs of a project in one phase, newest first. */
export const listRunsRequest = create(ListRunsRequestSchema, {
  scopeBy: { case: "projectId", value: { organization: "", name: projects.list, domain } },
  request: {
    limit: 50,
    sortBy: { key: "created_at", direction: 0 },
    filters: [{ function: 0, field: "phase", values: ["SUCCEEDED"] }]
  }
})

const base = Date.UTC(2026, 0, 1)
const time = (ms: number) => timestampFromDate(new Date(base + ms))

type Event = MessageInitShape<typeof ActionEventSchema>

/** The events an executor reports for one attempt: queued to `last`, with logs and cluster events on the way. */
export const attemptEvents = (
  id: ReturnType<typeof actionId>,
  attempt: number,
  last: number,
  startMs: number
): Array<Event> => {
  const event = (phase: number, offset: number, extra: Pick<Event, "logInfo" | "logContext" | "clusterEvents" | "errorInfo"> = {}): Event => ({
    id,
    attempt,
    phase,
    version: 0,
    updatedTime: time(startMs + offset),
    reportedTime: time(startMs + offset),
    cluster: "bench-cluster",
    ...extra
  })
  const pod = `${id.run.name}-${id.name}-${attempt}`
  return [
    event(1, 0),
    event(3, 100, { clusterEvents: [{ occurredAt: time(startMs + 100), message: `Pulling image for ${pod}` }] }),
    event(4, 200, {
      logInfo: [{ name: "pod", uri: `https://logs.example.com/${pod}` }],
      logContext: { primaryPodName: pod },
      clusterEvents: [{ occurredAt: time(startMs + 200), message: `Started container ${pod}` }]
    }),
    event(4, 300, { clusterEvents: [{ occurredAt: time(startMs + 300), message: `Still running ${pod}` }] }),
    event(last, 400, last === 6 ? { errorInfo: { message: `attempt ${attempt} failed`, kind: 1 } } : {})
  ]
}
