import type { Payload } from "./Payload.js"
import { ActionPhase, isTerminal } from "./Phase.js"
import type { RunView } from "./Records.js"

export type ErrorKind = "user" | "system" | "unspecified"

/** WatchGroups' request, as the domain reads it. */
export interface GroupsRequest {
  /** Runs of this project (and domain, when not empty); every run when undefined. */
  readonly project: { readonly name: string; readonly domain: string } | undefined
  readonly startDate: Date | undefined
  /** When set, the stream ends after its first message. */
  readonly endDate: Date | undefined
  /** At most this many groups in the first message; 0: every group. */
  readonly limit: number
  /** Groups ordered by their latest run's creation time. */
  readonly direction: "ASC" | "DESC"
  /** The kind of a failed run's `ErrorInfo` (an IDL payload the domain does not read). */
  readonly errorKind: (error: Payload) => ErrorKind
}

/** What a group needs of one run. */
export interface RunSummary {
  readonly runName: string
  readonly group: string
  readonly shortName: string
  readonly environmentName: string
  readonly phase: ActionPhase
  readonly createdAt: Date
  readonly startedAt: Date
  readonly endedAt: Date | undefined
  readonly errorKind: ErrorKind | undefined
}

export interface TaskGroupView {
  readonly taskName: string
  readonly shortName: string
  readonly environmentName: string
  readonly totalRuns: number
  readonly latestRunTime: Date
  readonly latestFinishedTime: Date | undefined
  /** The 10 newest, newest first. */
  readonly recentStatuses: ReadonlyArray<{ readonly runName: string; readonly phase: ActionPhase }>
  readonly averageFailureRate: number
  /** Over finished runs; undefined when none has finished. */
  readonly averageDurationMs: number | undefined
  readonly errorCounts: { readonly user: number; readonly system: number; readonly unspecified: number }
  readonly phaseCounts: ReadonlyArray<{ readonly phase: ActionPhase; readonly count: number }>
}

/** A run's group: its task's name, else its short name, else its root action's name. */
export const groupOf = (view: RunView): string => view.root.task?.name ?? view.root.shortName ?? view.root.key.name

export const inGroupsScope = (request: GroupsRequest, view: RunView): boolean => {
  const key = view.run.key
  if (request.project !== undefined) {
    if (request.project.name !== "" && key.project !== request.project.name) return false
    if (request.project.domain !== "" && key.domain !== request.project.domain) return false
  }
  const created = view.run.createdAt.getTime()
  return (request.startDate === undefined || created >= request.startDate.getTime()) &&
    (request.endDate === undefined || created <= request.endDate.getTime())
}

export const summarize = (view: RunView, error: Payload | undefined, request: GroupsRequest): RunSummary => ({
  runName: view.run.key.name,
  group: groupOf(view),
  shortName: view.root.shortName ?? "",
  environmentName: view.root.environmentName ?? "",
  phase: view.root.phase,
  createdAt: view.run.createdAt,
  startedAt: view.root.startedAt,
  endedAt: view.root.endedAt,
  errorKind: view.root.phase === ActionPhase.FAILED ? (error === undefined ? "unspecified" : request.errorKind(error)) : undefined
})

const newestFirst = (a: RunSummary, b: RunSummary) =>
  b.createdAt.getTime() - a.createdAt.getTime() || (a.runName < b.runName ? -1 : a.runName > b.runName ? 1 : 0)

/** One group from its runs (at least one). */
export const buildGroup = (taskName: string, runs: ReadonlyArray<RunSummary>): TaskGroupView => {
  const sorted = [...runs].sort(newestFirst)
  const newest = sorted[0]!
  const finished = sorted.filter((run) => isTerminal(run.phase) && run.endedAt !== undefined)
  const phaseCounts = new Map<ActionPhase, number>()
  for (const run of sorted) phaseCounts.set(run.phase, (phaseCounts.get(run.phase) ?? 0) + 1)
  const errors = { user: 0, system: 0, unspecified: 0 }
  for (const run of sorted) if (run.errorKind !== undefined) errors[run.errorKind] += 1
  const durations = finished.map((run) => Math.max(0, run.endedAt!.getTime() - run.startedAt.getTime()))
  return {
    taskName,
    shortName: newest.shortName,
    environmentName: newest.environmentName,
    totalRuns: sorted.length,
    latestRunTime: newest.createdAt,
    latestFinishedTime: finished.reduce<Date | undefined>(
      (latest, run) => (latest === undefined || run.endedAt!.getTime() > latest.getTime() ? run.endedAt : latest),
      undefined
    ),
    recentStatuses: sorted.slice(0, 10).map((run) => ({ runName: run.runName, phase: run.phase })),
    averageFailureRate: (phaseCounts.get(ActionPhase.FAILED) ?? 0) / sorted.length,
    averageDurationMs: durations.length === 0 ? undefined : durations.reduce((sum, d) => sum + d, 0) / durations.length,
    errorCounts: errors,
    phaseCounts: Array.from(phaseCounts, ([phase, count]) => ({ phase, count })).sort((a, b) => a.phase - b.phase)
  }
}

/** The groups of these runs, ordered by latest run time in `direction`, at most `limit` (0: all). */
export const buildGroups = (
  runs: Iterable<RunSummary>,
  options: { readonly direction: "ASC" | "DESC"; readonly limit: number }
): ReadonlyArray<TaskGroupView> => {
  const byGroup = new Map<string, Array<RunSummary>>()
  for (const run of runs) {
    const members = byGroup.get(run.group)
    if (members === undefined) byGroup.set(run.group, [run])
    else members.push(run)
  }
  const groups = Array.from(byGroup, ([name, members]) => buildGroup(name, members)).sort((a, b) => {
    const order = a.latestRunTime.getTime() - b.latestRunTime.getTime() || (a.taskName < b.taskName ? -1 : 1)
    return options.direction === "ASC" ? order : -order
  })
  return options.limit > 0 ? groups.slice(0, options.limit) : groups
}
