import { type MetricKey, type MetricPair, MetricState, Option } from "effect"

const escapeLabel = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, "\\\"")
const escapeHelp = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")
const metricName = (name: string) => name.replace(/[^a-zA-Z0-9_:]/g, "_")
const labelName = (name: string) => name.replace(/[^a-zA-Z0-9_]/g, "_")

const number = (value: number | bigint): string =>
  typeof value === "bigint" ? value.toString()
    : value === Infinity ? "+Inf"
    : value === -Infinity ? "-Inf"
    : String(value)

const labelText = (labels: ReadonlyArray<readonly [string, string]>): string =>
  labels.length === 0 ? "" : `{${labels.map(([key, value]) => `${labelName(key)}="${escapeLabel(value)}"`).join(",")}}`

const tagsOf = (key: MetricKey.MetricKey.Untyped): ReadonlyArray<readonly [string, string]> =>
  key.tags.map((tag) => [tag.key, tag.value] as const)

const typeOf = (state: MetricState.MetricState.Untyped): string | undefined =>
  MetricState.isCounterState(state) ? "counter"
    : MetricState.isGaugeState(state) ? "gauge"
    : MetricState.isHistogramState(state) ? "histogram"
    : undefined

const samples = (name: string, key: MetricKey.MetricKey.Untyped, state: MetricState.MetricState.Untyped): Array<string> => {
  const tags = tagsOf(key)
  if (MetricState.isCounterState(state)) return [`${name}${labelText(tags)} ${number(state.count)}`]
  if (MetricState.isGaugeState(state)) return [`${name}${labelText(tags)} ${number(state.value)}`]
  if (MetricState.isHistogramState(state)) {
    // Effect's buckets are cumulative already, and its bounds end with infinity, Prometheus's `+Inf` (the count).
    const lines = Array.from(state.buckets, ([bound, count]) =>
      `${name}_bucket${labelText([...tags, ["le", number(bound)]])} ${count}`)
    if (state.buckets.at(-1)?.[0] !== Infinity) lines.push(`${name}_bucket${labelText([...tags, ["le", "+Inf"]])} ${state.count}`)
    lines.push(`${name}_sum${labelText(tags)} ${number(state.sum)}`)
    lines.push(`${name}_count${labelText(tags)} ${state.count}`)
    return lines
  }
  return []
}

/**
 * Effect's metrics in the Prometheus text format (0.0.4): one family per name, its series in a stable order.
 * Counters, gauges and histograms; Effect's frequencies and summaries are not used here and are left out, and
 * so is Effect's runtime's `effect_fiber_*` (prom-client's `nodejs_*` describe the runtime).
 */
export const prometheusText = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>): string => {
  const families = new Map<string, { type: string; help: string | undefined; lines: Array<string> }>()
  const sorted = [...pairs].sort((a, b) => {
    const byName = a.metricKey.name.localeCompare(b.metricKey.name)
    return byName !== 0 ? byName : labelText(tagsOf(a.metricKey)).localeCompare(labelText(tagsOf(b.metricKey)))
  })
  for (const { metricKey, metricState } of sorted) {
    const type = typeOf(metricState)
    // Effect's own fiber metrics count up and down in a counter, which Prometheus would misread.
    if (type === undefined || metricKey.name.startsWith("effect_")) continue
    const name = metricName(metricKey.name)
    let family = families.get(name)
    if (family === undefined) {
      family = { type, help: Option.getOrUndefined(metricKey.description), lines: [] }
      families.set(name, family)
    }
    family.lines.push(...samples(name, metricKey, metricState))
  }
  let text = ""
  for (const [name, family] of families) {
    if (family.help !== undefined) text += `# HELP ${name} ${escapeHelp(family.help)}\n`
    text += `# TYPE ${name} ${family.type}\n${family.lines.join("\n")}\n`
  }
  return text
}
