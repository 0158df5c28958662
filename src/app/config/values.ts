import { Duration, Either, LogLevel, Option } from "effect"

/** Parses one configuration value; `Left` is what is wrong, phrased "expected ..., got ...". */
export type Parse<A> = (text: string) => Either.Either<A, string>

const got = (text: string) => `got ${JSON.stringify(text)}`

const check = <A>(expected: string, parse: (text: string) => A | undefined): Parse<A> => (text) => {
  const value = parse(text)
  return value === undefined ? Either.left(`expected ${expected}, ${got(text)}`) : Either.right(value)
}

export const nonEmpty: Parse<string> = check("a non-empty value", (text) => {
  const trimmed = text.trim()
  return trimmed === "" ? undefined : trimmed
})

export const port: Parse<number> = check("a port number (1-65535)", (text) => {
  const n = /^\d{1,5}$/.test(text.trim()) ? Number(text) : NaN
  return n >= 1 && n <= 65535 ? n : undefined
})

export const count = (min: 0 | 1): Parse<number> =>
  check(min === 0 ? "a whole number (0 or more)" : "a positive whole number", (text) => {
    const n = /^\d+$/.test(text.trim()) ? Number(text) : NaN
    return Number.isSafeInteger(n) && n >= min ? n : undefined
  })

const truthy = ["true", "yes", "on", "1"]
const falsy = ["false", "no", "off", "0"]

export const boolean: Parse<boolean> = check("true or false", (text) => {
  const lower = text.trim().toLowerCase()
  return truthy.includes(lower) ? true : falsy.includes(lower) ? false : undefined
})

export const oneOf = <const L extends string>(...literals: ReadonlyArray<L>): Parse<L> =>
  check(`one of ${literals.join(", ")}`, (text) => literals.find((literal) => literal === text.trim()))

const goUnits: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, "μs": 1e-3, ms: 1, s: 1e3, m: 6e4, h: 36e5 }
const goSegment = /(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y

/** Go's `time.ParseDuration` syntax (`1h30m`, `500ms`), which the seed's YAML uses, without a sign. */
const goDuration = (text: string): Duration.Duration | undefined => {
  if (text === "0") return Duration.zero
  const segment = new RegExp(goSegment)
  let millis = 0
  let match: RegExpExecArray | null
  while ((match = segment.exec(text)) !== null) {
    millis += Number(match[1]) * goUnits[match[2]!]!
    if (segment.lastIndex === text.length) return Duration.millis(millis)
  }
  return undefined
}

export const duration = (options: { readonly allowZero: boolean }): Parse<Duration.Duration> =>
  check(
    `a ${options.allowZero ? "" : "positive "}duration like 1h30m, 90s or "10 seconds"`,
    (text) => {
      const trimmed = text.trim()
      const value = goDuration(trimmed) ?? Option.getOrUndefined(Duration.decodeUnknown(trimmed))
      if (value === undefined || !Duration.isFinite(value) || Duration.toMillis(value) < 0) return undefined
      return options.allowZero || Duration.toMillis(value) > 0 ? value : undefined
    }
  )

// The seed's (zap/logrus) numbering: 0 panic, 1 fatal, 2 error, 3 warning, 4 info, 5 debug, 6 trace.
const levelsByNumber = [
  LogLevel.Fatal, LogLevel.Fatal, LogLevel.Error, LogLevel.Warning, LogLevel.Info, LogLevel.Debug, LogLevel.Trace
]
const levelsByName: Record<string, LogLevel.LogLevel> = {
  panic: LogLevel.Fatal,
  fatal: LogLevel.Fatal,
  error: LogLevel.Error,
  warn: LogLevel.Warning,
  warning: LogLevel.Warning,
  info: LogLevel.Info,
  debug: LogLevel.Debug,
  trace: LogLevel.Trace
}

export const logLevel: Parse<LogLevel.LogLevel> = check(
  "a level 0-6 (0 panic, 1 fatal, 2 error, 3 warning, 4 info, 5 debug, 6 trace) or one of those names",
  (text) => {
    const lower = text.trim().toLowerCase()
    if (/^\d$/.test(lower)) return levelsByNumber[Number(lower)]
    return Object.hasOwn(levelsByName, lower) ? levelsByName[lower] : undefined
  }
)

const parseUrl = (text: string): URL | undefined => {
  try {
    return new URL(text)
  } catch {
    return undefined
  }
}

export const httpUrl: Parse<string> = check("an http:// or https:// URL", (text) => {
  const url = parseUrl(text.trim())
  const http = url !== undefined && (url.protocol === "http:" || url.protocol === "https:") && url.host !== ""
  return http ? text.trim() : undefined
})

export const storagePrefix: Parse<string> = check(
  "an absolute URI like file:///var/lib/runs or s3://bucket/prefix",
  (text) => {
    const prefix = text.trim().replace(/\/+$/, "")
    const match = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/(.+)$/.exec(prefix)
    if (match === null) return undefined
    return match[1]!.toLowerCase() === "file" && !match[2]!.startsWith("/") ? undefined : prefix
  }
)

const origin: Parse<string> = check("origins like https://example.com (scheme://host[:port])", (text) => {
  const url = parseUrl(text)
  return url !== undefined && url.origin !== "null" && url.origin === text.replace(/\/$/, "") ? url.origin : undefined
})

/** A list from YAML, or one comma-separated string (from YAML or an environment variable). */
export const origins = (items: ReadonlyArray<string>): Either.Either<ReadonlyArray<string>, string> =>
  Either.all(
    items.flatMap((item) => item.split(",")).map((item) => item.trim()).filter((item) => item !== "").map(origin)
  )

export const headerName: Parse<string> = check("an HTTP header name", (text) => {
  const trimmed = text.trim()
  return /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(trimmed) ? trimmed : undefined
})

export const pgOptions: Parse<string> = check(
  "libpq options as space-separated key=value pairs, e.g. sslmode=disable",
  (text) => /^\s*([A-Za-z_]\w*\s*=\s*('(?:[^'\\]|\\.)*'|[^\s']+)\s*)*$/.test(text) ? text.trim() : undefined
)

/** `runs.domains`: domain ids, a list or a comma-separated string, each once. */
export const domains = (items: ReadonlyArray<string>): Either.Either<ReadonlyArray<string>, string> => {
  const list = items.flatMap((item) => item.split(",")).map((item) => item.trim()).filter((item) => item !== "")
  if (list.length === 0) return Either.left("expected at least one domain")
  const repeated = list.find((item, i) => list.indexOf(item) !== i)
  return repeated === undefined ? Either.right(list) : Either.left(`domain "${repeated}" is listed twice`)
}

/** `runs.clusterEndpoint`: an http(s) base URL, without a trailing `/`. */
export const baseUrl: Parse<string> = (text) => Either.map(httpUrl(text), (url) => url.replace(/\/+$/, ""))
