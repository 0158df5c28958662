/** `flyteidl2.common.ActionPhase`, by number. */
export const ActionPhase = {
  UNSPECIFIED: 0,
  QUEUED: 1,
  WAITING_FOR_RESOURCES: 2,
  INITIALIZING: 3,
  RUNNING: 4,
  SUCCEEDED: 5,
  FAILED: 6,
  ABORTED: 7,
  TIMED_OUT: 8,
  PAUSED: 9
} as const

export type ActionPhase = (typeof ActionPhase)[keyof typeof ActionPhase]

export type PhaseName = keyof typeof ActionPhase

const names = Object.fromEntries(Object.entries(ActionPhase).map(([name, n]) => [n, name])) as Record<
  ActionPhase,
  PhaseName
>

export const isActionPhase = (n: number): n is ActionPhase => Number.isInteger(n) && n >= 0 && n <= 9

export const phaseName = (phase: ActionPhase): PhaseName => names[phase]

/** The seed's storage form: `PHASE_QUEUED`, ... */
export const phaseColumn = (phase: ActionPhase): string => `PHASE_${phaseName(phase)}`

// Every phase by both spellings a column may hold (`PHASE_QUEUED` and `QUEUED`): stores read one per row.
const byColumn = new Map<string, ActionPhase>(
  Object.entries(ActionPhase).flatMap(([name, n]) => [[name, n], [`PHASE_${name}`, n]])
)

export const phaseFromColumn = (text: string): ActionPhase | undefined => byColumn.get(text)

export const isTerminal = (phase: ActionPhase): boolean =>
  phase === ActionPhase.SUCCEEDED || phase === ActionPhase.FAILED || phase === ActionPhase.ABORTED ||
  phase === ActionPhase.TIMED_OUT

/** `flyteidl2.workflow.ActionType`. */
export const ActionType = { UNSPECIFIED: 0, TASK: 1, TRACE: 2, CONDITION: 3 } as const
export type ActionType = (typeof ActionType)[keyof typeof ActionType]
export type ActionTypeName = Exclude<keyof typeof ActionType, "UNSPECIFIED">

export const actionTypeName = (type: ActionType): ActionTypeName | undefined =>
  type === ActionType.TASK ? "TASK" : type === ActionType.TRACE ? "TRACE" : type === ActionType.CONDITION ? "CONDITION" : undefined

/** `flyteidl2.workflow.RunSource`. */
export const RunSource = { UNSPECIFIED: 0, WEB: 1, CLI: 2, SCHEDULE_TRIGGER: 3 } as const
export type RunSource = (typeof RunSource)[keyof typeof RunSource]

/** `flyteidl2.core.CatalogCacheStatus` is carried as its number (0 = CACHE_DISABLED). */
export type CacheStatus = number
