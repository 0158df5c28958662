import type { ActionKey, RunKey, TaskKey } from "./Ids.js"
import { emptyPayload, type Fingerprint, type Payload } from "./Payload.js"
import type { ActionPhase, ActionType, CacheStatus, RunSource } from "./Phase.js"

export interface TaskRef extends TaskKey {
  readonly org: string
}

export interface TriggerRef {
  readonly org: string
  readonly project: string
  readonly domain: string
  readonly name: string
}

export type ActionSpec =
  | { readonly kind: "task"; readonly payload: Payload }
  | { readonly kind: "trace"; readonly payload: Payload }
  | { readonly kind: "condition"; readonly payload: Payload }

export interface AbortRecord {
  readonly reason: string
  readonly abortedBy: string | undefined
}

/** One action of a run, the root (`a0`) included: what the `actions` table holds. */
export interface ActionRecord {
  readonly key: ActionKey
  /** The org stored with the run; children inherit it. */
  readonly org: string
  readonly parent: string | undefined
  readonly type: ActionType
  readonly phase: ActionPhase
  readonly attempts: number
  readonly cacheStatus: CacheStatus
  readonly group: string | undefined
  readonly task: TaskRef | undefined
  readonly taskType: string | undefined
  readonly shortName: string | undefined
  readonly functionName: string | undefined
  readonly environmentName: string | undefined
  readonly source: RunSource
  readonly triggerName: string | undefined
  /** The creator's subject. */
  readonly createdBy: string | undefined
  readonly spec: ActionSpec | undefined
  /** Extra metadata the executor reported (e.g. a condition's), as an opaque payload. */
  readonly metadata: Payload | undefined
  readonly inputUri: string | undefined
  readonly runOutputBase: string | undefined
  /** Outputs recorded with the action itself (a trace's); other actions' outputs are their attempts'. */
  readonly outputsUri: string | undefined
  readonly startedAt: Date
  readonly endedAt: Date | undefined
  readonly abort: AbortRecord | undefined
  readonly errorInfo: Payload | undefined
  readonly createdAt: Date
  readonly updatedAt: Date
}

/** A run: what the `runs` table holds. Its phase, times and attempts are its root action's. */
export interface RunRecord {
  readonly key: RunKey
  readonly org: string
  readonly rootActionName: string
  readonly trigger: TriggerRef | undefined
  readonly runSpec: Payload
  readonly createdByPrincipal: string | undefined
  readonly createdByServiceAccount: string | undefined
  /** The cluster the run spec names, if any. */
  readonly cluster: string | undefined
  readonly fingerprint: Fingerprint
  /** The `x-request-id` the run was created with, if any. */
  readonly requestId: string | undefined
  readonly createdAt: Date
  readonly updatedAt: Date
}

/** A run with its root action, as lists and details show it. */
export interface RunView {
  readonly run: RunRecord
  readonly root: ActionRecord
}

/** An action as lists carry it: without its spec, which no list shows (and which is its largest part). */
export const listedAction = (action: ActionRecord): ActionRecord =>
  action.spec === undefined ? action : { ...action, spec: undefined }

/** A run as lists carry it: without its run spec and its root's spec. */
export const listedView = (view: RunView): RunView => ({
  run: { ...view.run, runSpec: emptyPayload },
  root: listedAction(view.root)
})

export interface PhaseTransition {
  readonly phase: ActionPhase
  readonly startTime: Date
  readonly endTime: Date | undefined
}

export interface ClusterEvent {
  readonly occurredAt: Date
  readonly message: string
}

/** One attempt of an action, as the attempt tables hold it (rebuilt from events by ingestion). */
export interface AttemptRecord {
  readonly attempt: number
  readonly phase: ActionPhase
  readonly startTime: Date | undefined
  readonly endTime: Date | undefined
  readonly outputs: Payload | undefined
  /** `core.TaskLog` entries. */
  readonly logInfo: ReadonlyArray<Payload>
  readonly logContext: Payload | undefined
  readonly errorInfo: Payload | undefined
  readonly cluster: string | undefined
  readonly cacheStatus: CacheStatus
  readonly logsAvailable: boolean
  readonly phaseTransitions: ReadonlyArray<PhaseTransition>
  readonly clusterEvents: ReadonlyArray<ClusterEvent>
}

/** A task spec recorded by CreateRun or DeployTask under its template's identifier. */
export interface TaskRecord {
  readonly key: TaskKey
  readonly org: string
  readonly spec: Payload
  /** When it was deployed (or first run). */
  readonly createdAt: Date
  /** The subject who deployed it (or first ran it), when known. */
  readonly deployedBy?: string | undefined
  /** The template's `metadata.is_entrypoint`, when known. */
  readonly entrypoint?: boolean | undefined
}

/** Duration of an action: end minus start, once it has ended. */
export const durationMs = (action: Pick<ActionRecord, "startedAt" | "endedAt">): number | undefined =>
  action.endedAt === undefined ? undefined : Math.max(0, action.endedAt.getTime() - action.startedAt.getTime())
