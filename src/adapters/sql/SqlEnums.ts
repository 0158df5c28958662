import { ActionType, type ActionTypeName, RunSource } from "../../domain/Phase.js"

/** The enum columns stored by name (`action_type`, `run_source`) and how SQL reads them back as numbers. */
export const runSourceNames: Record<RunSource, string> = {
  [RunSource.UNSPECIFIED]: "RUN_SOURCE_UNSPECIFIED",
  [RunSource.WEB]: "RUN_SOURCE_WEB",
  [RunSource.CLI]: "RUN_SOURCE_CLI",
  [RunSource.SCHEDULE_TRIGGER]: "RUN_SOURCE_SCHEDULE_TRIGGER"
}

export const actionTypeNumbers: Record<ActionTypeName, ActionType> = {
  TASK: ActionType.TASK,
  TRACE: ActionType.TRACE,
  CONDITION: ActionType.CONDITION
}

/** `CASE` expressions that read the enum name columns as their numbers, for filters and sorts. */
const caseOf = (column: string, numbers: ReadonlyArray<readonly [string, number]>) =>
  `CASE ${column} ${numbers.map(([name, n]) => `WHEN '${name}' THEN ${n}`).join(" ")} ELSE 0 END`
export const actionTypeNumberSql = (column: string) => caseOf(column, Object.entries(actionTypeNumbers))
export const runSourceNumberSql = (column: string) =>
  caseOf(column, Object.entries(runSourceNames).map(([n, name]) => [name, Number(n)] as const))

export const runSourceOf = (name: string | null): RunSource => {
  const found = Object.entries(runSourceNames).find(([, candidate]) => candidate === name)
  return found === undefined ? RunSource.UNSPECIFIED : (Number(found[0]) as RunSource)
}
