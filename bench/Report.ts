import { execFileSync } from "node:child_process"
import { cpus, release, totalmem } from "node:os"

/** One line of the table: what was loaded and how it went. */
export interface Row {
  readonly scenario: string
  /** Units per second ("req/s", "events/s", "msgs/s") or undefined for a one-off measure. */
  readonly throughput?: { readonly value: number; readonly unit: string }
  readonly p50Ms?: number
  readonly p99Ms?: number
  readonly peakRssMb?: number
  readonly errors?: number
  readonly note?: string
}

/** A figure the issue sets a target for, and whether it is met. */
export interface Check {
  readonly measure: string
  readonly value: number
  readonly target: string
  readonly met: boolean | undefined
  /** The value as printed when a number with two decimals would not say it (e.g. "18 of 20"). */
  readonly shown?: string
}

export interface Report {
  readonly machine: Record<string, unknown>
  readonly rows: ReadonlyArray<Row>
  readonly checks: ReadonlyArray<Check>
}

export const machineFacts = (database: string) => {
  let commit: string | undefined
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim()
  } catch {
    commit = undefined
  }
  return {
    date: new Date().toISOString(),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "unknown",
    memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    kernel: release(),
    database,
    commit
  }
}

const fixed = (value: number | undefined, digits: number) =>
  value === undefined || Number.isNaN(value) ? "-" : value.toFixed(digits)

const table = (header: ReadonlyArray<string>, lines: ReadonlyArray<ReadonlyArray<string>>) => {
  const widths = header.map((cell, i) => Math.max(cell.length, ...lines.map((line) => line[i]?.length ?? 0)))
  const format = (cells: ReadonlyArray<string>) => `| ${cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join(" | ")} |`
  return [format(header), `|${widths.map((width) => "-".repeat(width + 2)).join("|")}|`, ...lines.map(format)].join("\n")
}

/** The two tables as Markdown (they go into the README as they are printed). */
export const render = (report: Report) =>
  [
    table(
      ["scenario", "throughput", "p50 ms", "p99 ms", "server peak RSS MB", "errors", "note"],
      report.rows.map((row) => [
        row.scenario,
        row.throughput === undefined ? "-" : `${fixed(row.throughput.value, 0)} ${row.throughput.unit}`,
        fixed(row.p50Ms, 2),
        fixed(row.p99Ms, 2),
        fixed(row.peakRssMb, 0),
        String(row.errors ?? 0),
        row.note ?? ""
      ])
    ),
    "",
    table(
      ["measure", "value", "target", "met"],
      report.checks.map((check) => [
        check.measure,
        check.shown ?? fixed(check.value, 2),
        check.target,
        check.met === undefined ? "(reported)" : check.met ? "yes" : "NO"
      ])
    )
  ].join("\n")
