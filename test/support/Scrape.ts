import { Effect, Schedule } from "effect"

export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

/** The samples of a Prometheus text exposition (comments skipped). */
export const parseExposition = (text: string): ReadonlyArray<Sample> =>
  text.split("\n").flatMap((line) => {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match === null) return []
    const labels: Record<string, string> = {}
    for (const pair of (match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1]!] = pair[2]!.replace(/\\n/g, "\n").replace(/\\"/g, "\"").replace(/\\\\/g, "\\")
    }
    const value = match[3] === "+Inf" ? Infinity : Number(match[3])
    return [{ name: match[1]!, labels, value }]
  })

/** The value of the one series of `name` whose labels are exactly `labels`; 0 when there is none yet. */
export const valueOf = (samples: ReadonlyArray<Sample>, name: string, labels: Record<string, string> = {}): number => {
  const wanted = Object.entries(labels)
  const found = samples.filter((sample) =>
    sample.name === name &&
    Object.keys(sample.labels).length === wanted.length &&
    wanted.every(([key, value]) => sample.labels[key] === value)
  )
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)}: ${found.length} series`)
  return found[0]?.value ?? 0
}

/** GET `url` and parse it. */
export const scrape = (url: string) =>
  Effect.promise(async () => {
    const response = await fetch(url)
    if (response.status !== 200) throw new Error(`${url}: ${response.status}`)
    return { contentType: response.headers.get("content-type"), samples: parseExposition(await response.text()) }
  })

/**
 * Scrapes until `check` holds (what is measured after an answer, such as a stream's end seen by the server, lands
 * a moment later): waits for the state, and fails with the last scrape's values after 10 s.
 */
export const scrapeUntil = (url: string, check: (samples: ReadonlyArray<Sample>) => boolean) =>
  scrape(url).pipe(
    Effect.filterOrFail((scraped) => check(scraped.samples), () => new Error(`${url}: the metrics never matched`)),
    Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo("10 seconds"))),
    Effect.map((scraped) => scraped.samples),
    Effect.orDie
  )
