import { describe, expect, it } from "@effect/vitest"
import type { StatusReport } from "../../src/domain/Events.js"
import { ActionPhase, ActionType, phaseColumn, phaseFromColumn, phaseName, RunSource } from "../../src/domain/Phase.js"
import { applyStatus, isLaterPhase, phaseOrder, type StatusContext } from "../../src/domain/PhaseRules.js"
import type { ActionRecord } from "../../src/domain/Records.js"

const t = (seconds: number) => new Date(Date.UTC(2025, 0, 1, 0, 0, seconds))
const now = t(100)
const running: StatusContext = { rootPhase: ActionPhase.RUNNING, now }
const rootAborted: StatusContext = { rootPhase: ActionPhase.ABORTED, now }

const action = (overrides: Partial<ActionRecord> = {}): ActionRecord => ({
  key: { run: { project: "p", domain: "d", name: "r1" }, name: "a1" },
  org: "o",
  parent: "a0",
  type: ActionType.TASK,
  phase: ActionPhase.QUEUED,
  attempts: 1,
  cacheStatus: 0,
  group: undefined,
  task: undefined,
  taskType: undefined,
  shortName: "t",
  functionName: undefined,
  environmentName: undefined,
  source: RunSource.CLI,
  triggerName: undefined,
  createdBy: undefined,
  spec: undefined,
  metadata: undefined,
  inputUri: undefined,
  runOutputBase: undefined,
  outputsUri: undefined,
  startedAt: t(10),
  endedAt: undefined,
  abort: undefined,
  errorInfo: undefined,
  createdAt: t(10),
  updatedAt: t(10),
  ...overrides
})

const report = (overrides: Partial<StatusReport> = {}): StatusReport => ({
  phase: ActionPhase.RUNNING,
  attempts: 0,
  cacheStatus: 0,
  startTime: undefined,
  endTime: undefined,
  ...overrides
})

const phases: ReadonlyArray<ActionPhase> = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
const terminal = (phase: ActionPhase) => phase >= 5 && phase <= 8

/** An action in `phase`, ended if terminal, with 2 attempts. */
const inPhase = (phase: ActionPhase) => action({ phase, attempts: 2, endedAt: terminal(phase) ? t(50) : undefined })

/** Rows: current phase 0..9; columns: reported phase 0..9; A = applied, . = ignored. */
const checkTable = (table: ReadonlyArray<string>, attempts: number, context: StatusContext) => {
  const actual = phases.map((current) =>
    phases.map((next) => {
      const result = applyStatus(inPhase(current), report({ phase: next, attempts }), context)
      if (result !== undefined) expect(result.phase).toBe(next)
      return result === undefined ? "." : "A"
    }).join("")
  )
  expect(actual.map((row, c) => `${phaseName(phases[c]!).padEnd(21)} ${row}`)).toEqual(
    table.map((row, c) => `${phaseName(phases[c]!).padEnd(21)} ${row.replaceAll(" ", "")}`)
  )
}

describe("PhaseRules", () => {
  it("orders phases, with PAUSED and the terminal phases sharing the last place", () => {
    expect(phases.map(phaseOrder)).toEqual([0, 1, 2, 3, 4, 5, 5, 5, 5, 5])
    expect(isLaterPhase(ActionPhase.RUNNING, ActionPhase.INITIALIZING)).toBe(true)
    expect(isLaterPhase(ActionPhase.SUCCEEDED, ActionPhase.PAUSED)).toBe(false)
  })

  it("applies every pair of phases by SPEC 4 when the report is no retry (A = S, and A = 0)", () => {
    const table = [
      //   0 1 2 3 4 5 6 7 8 9
      /* 0 */ ". A A A A A A A A A",
      /* 1 */ ". A A A A A A A A A",
      /* 2 */ ". . A A A A A A A A",
      /* 3 */ ". . . A A A A A A A",
      /* 4 */ ". . . . A A A A A A",
      /* 5 */ ". . . . . A . . . .",
      /* 6 */ ". . . . . . A . . .",
      /* 7 */ ". . . . . . . A . .",
      /* 8 */ ". . . . . . . . A .",
      /* 9 */ ". . . . . A A A A A"
    ]
    checkTable(table, 2, running)
    checkTable(table, 0, running)
  })

  it("lets a retry (A > S) move FAILED and TIMED_OUT to any phase but UNSPECIFIED", () => {
    checkTable([
      //   0 1 2 3 4 5 6 7 8 9
      /* 0 */ ". A A A A A A A A A",
      /* 1 */ ". A A A A A A A A A",
      /* 2 */ ". . A A A A A A A A",
      /* 3 */ ". . . A A A A A A A",
      /* 4 */ ". . . . A A A A A A",
      /* 5 */ ". . . . . A . . . .",
      /* 6 */ ". A A A A A A A A A",
      /* 7 */ ". . . . . . . A . .",
      /* 8 */ ". A A A A A A A A A",
      /* 9 */ ". . . . . A A A A A"
    ], 3, running)
  })

  it("once the root is ABORTED, keeps every terminal action where it is, even on a retry", () => {
    checkTable([
      //   0 1 2 3 4 5 6 7 8 9
      /* 0 */ ". A A A A A A A A A",
      /* 1 */ ". A A A A A A A A A",
      /* 2 */ ". . A A A A A A A A",
      /* 3 */ ". . . A A A A A A A",
      /* 4 */ ". . . . A A A A A A",
      /* 5 */ ". . . . . A . . . .",
      /* 6 */ ". . . . . . A . . .",
      /* 7 */ ". . . . . . . A . .",
      /* 8 */ ". . . . . . . . A .",
      /* 9 */ ". . . . . A A A A A"
    ], 3, rootAborted)
  })

  it("keeps the highest attempt count; a reported 0 is not reported", () => {
    const current = action({ phase: ActionPhase.RUNNING, attempts: 2 })
    expect(applyStatus(current, report({ attempts: 3 }), running)?.attempts).toBe(3)
    expect(applyStatus(current, report({ attempts: 1 }), running)?.attempts).toBe(2)
    expect(applyStatus(current, report({ attempts: 0 }), running)?.attempts).toBe(2)
  })

  it("takes the cache status only from a report that carries attempts", () => {
    const current = action({ phase: ActionPhase.RUNNING, cacheStatus: 2 })
    expect(applyStatus(current, report({ attempts: 1, cacheStatus: 4 }), running)?.cacheStatus).toBe(4)
    expect(applyStatus(current, report({ attempts: 1, cacheStatus: 0 }), running)?.cacheStatus).toBe(0)
    expect(applyStatus(current, report({ attempts: 0, cacheStatus: 4 }), running)?.cacheStatus).toBe(2)
  })

  it("moves the start earlier, never later", () => {
    const current = action({ phase: ActionPhase.QUEUED, startedAt: t(10) })
    expect(applyStatus(current, report({ startTime: t(5) }), running)?.startedAt).toEqual(t(5))
    expect(applyStatus(current, report({ startTime: t(20) }), running)?.startedAt).toEqual(t(10))
    expect(applyStatus(current, report({ startTime: undefined }), running)?.startedAt).toEqual(t(10))
  })

  it("sets the end when the action becomes terminal: the reported end, else now, never before the start", () => {
    const current = action({ phase: ActionPhase.RUNNING, startedAt: t(10) })
    const failed = (overrides: Partial<StatusReport>) =>
      applyStatus(current, report({ phase: ActionPhase.FAILED, ...overrides }), running)?.endedAt
    expect(failed({ endTime: t(40) })).toEqual(t(40))
    expect(failed({})).toEqual(now)
    expect(failed({ endTime: t(3) })).toEqual(t(10))
    expect(failed({ endTime: t(3), startTime: t(1) })).toEqual(t(3))
    expect(applyStatus(current, report({ phase: ActionPhase.RUNNING, endTime: t(40) }), running)?.endedAt)
      .toBeUndefined()
  })

  it("keeps the end on a terminal refresh unless a new end is reported", () => {
    const current = action({ phase: ActionPhase.SUCCEEDED, endedAt: t(50) })
    expect(applyStatus(current, report({ phase: ActionPhase.SUCCEEDED }), running)?.endedAt).toEqual(t(50))
    expect(applyStatus(current, report({ phase: ActionPhase.SUCCEEDED, endTime: t(60) }), running)?.endedAt)
      .toEqual(t(60))
  })

  it("clears the end when a retry revives a failed action, and sets a new one when the retry ends", () => {
    const failed = action({ phase: ActionPhase.FAILED, attempts: 1, endedAt: t(50) })
    const revived = applyStatus(failed, report({ phase: ActionPhase.QUEUED, attempts: 2 }), running)
    expect(revived).toMatchObject({ phase: ActionPhase.QUEUED, attempts: 2, endedAt: undefined })
    const succeeded = applyStatus(failed, report({ phase: ActionPhase.SUCCEEDED, attempts: 2 }), running)
    expect(succeeded).toMatchObject({ phase: ActionPhase.SUCCEEDED, attempts: 2, endedAt: now })
  })

  it("changes only phase, attempts, cache status, times and updatedAt", () => {
    const current = action({ phase: ActionPhase.RUNNING, attempts: 1, cacheStatus: 1, errorInfo: undefined })
    const next = applyStatus(
      current,
      report({ phase: ActionPhase.SUCCEEDED, attempts: 2, cacheStatus: 3, startTime: t(5), endTime: t(70) }),
      running
    )
    expect(next).toEqual({
      ...current,
      phase: ActionPhase.SUCCEEDED,
      attempts: 2,
      cacheStatus: 3,
      startedAt: t(5),
      endedAt: t(70),
      updatedAt: now
    })
  })

  it("answers a stale report with undefined, whatever else it carries", () => {
    const current = action({ phase: ActionPhase.SUCCEEDED, endedAt: t(50) })
    expect(applyStatus(current, report({ phase: ActionPhase.RUNNING, attempts: 5, startTime: t(1) }), running))
      .toBeUndefined()
  })
})

describe("phase columns", () => {
  it("read back every phase from both spellings, and nothing else", () => {
    for (const phase of Object.values(ActionPhase)) {
      expect(phaseFromColumn(phaseColumn(phase))).toBe(phase)
      expect(phaseFromColumn(phaseName(phase))).toBe(phase)
    }
    for (const text of ["", "PHASE_", "running", "PHASE_running", "toString", "PHASE_constructor", "__proto__", "4"]) {
      expect(phaseFromColumn(text)).toBeUndefined()
    }
  })
})
