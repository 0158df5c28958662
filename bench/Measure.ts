/** A clock that the threads of a process share: milliseconds since the epoch, with fractions. */
export const clock = () => performance.timeOrigin + performance.now()

/** Latency samples in milliseconds, and the figures a scenario reports from them. */
export class Samples {
  private values = new Float64Array(1024)
  private size = 0

  add(ms: number): void {
    if (this.size === this.values.length) {
      const grown = new Float64Array(this.values.length * 2)
      grown.set(this.values)
      this.values = grown
    }
    this.values[this.size++] = ms
  }

  get count(): number {
    return this.size
  }

  /** The value below which `fraction` of the samples fall (nearest rank); NaN when there are none. */
  percentile(fraction: number): number {
    if (this.size === 0) return Number.NaN
    const sorted = this.values.slice(0, this.size).sort()
    return sorted[Math.min(this.size - 1, Math.ceil(fraction * this.size) - 1)] ?? Number.NaN
  }
}

export interface LoadFigures {
  /** Calls completed in the measured window. */
  readonly calls: number
  /** Units of work per second (calls, or events when each call carries several). */
  readonly throughput: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly errors: number
  readonly firstError: string | undefined
}

const describe = (error: unknown) => (error instanceof Error ? error.message : String(error))

/**
 * A closed loop: `concurrency` workers each call, wait for the answer, and call again, for `warmupMs` (not
 * counted) and then `measureMs`, whose completed calls count. `call` returns how many units of work the call
 * carried (1 when it returns nothing).
 */
export const closedLoop = async (options: {
  readonly concurrency: number
  readonly warmupMs: number
  readonly measureMs: number
  readonly call: (worker: number, sequence: number) => Promise<number | void>
}): Promise<LoadFigures> => {
  const samples = new Samples()
  const start = performance.now()
  const measureFrom = start + options.warmupMs
  const end = measureFrom + options.measureMs
  let units = 0
  let errors = 0
  let firstError: string | undefined
  const worker = async (index: number) => {
    for (let sequence = 0; performance.now() < end; sequence++) {
      const began = performance.now()
      try {
        const carried = await options.call(index, sequence)
        const finished = performance.now()
        // Completions within the window (a call that began in the warm-up counts when it ends inside): counting
        // only calls that both began and ended inside would drop up to one call per worker at each edge, a
        // larger share of the work the longer each call takes.
        if (finished >= measureFrom && finished <= end) {
          samples.add(finished - began)
          units += typeof carried === "number" ? carried : 1
        }
      } catch (error) {
        errors += 1
        firstError ??= describe(error)
      }
    }
  }
  await Promise.all(Array.from({ length: options.concurrency }, (_, index) => worker(index)))
  return {
    calls: samples.count,
    throughput: units / (options.measureMs / 1000),
    p50Ms: samples.percentile(0.5),
    p99Ms: samples.percentile(0.99),
    errors,
    firstError
  }
}

/** Runs `tick` every `intervalMs` (on schedule, not after the previous tick ends) until `durationMs`. */
export const paced = async (intervalMs: number, durationMs: number, tick: (sequence: number) => void) => {
  const start = performance.now()
  for (let sequence = 0; sequence * intervalMs < durationMs; sequence++) {
    const due = start + sequence * intervalMs
    const wait = due - performance.now()
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
    tick(sequence)
  }
}
