import * as fs from "node:fs"
import * as path from "node:path"
import { type ConfigError, ConfigProvider, Data, Effect, Either } from "effect"
import * as YAML from "yaml"
import type { AppConfig } from "./AppConfig.js"
import { appConfig, knownKeys, listKeys } from "./config/settings.js"

export class ConfigLoadError extends Data.TaggedError("ConfigLoadError")<{ readonly message: string }> {}

const fail = (message: string) => Either.left(new ConfigLoadError({ message }))

/** `argv` without node and the script: `--config FILE` or `--config=FILE`, nothing else. */
export const parseArgs = (
  argv: ReadonlyArray<string>
): Either.Either<{ readonly configFile: string | undefined }, ConfigLoadError> => {
  let configFile: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const value = arg === "--config" ? argv[++i] : arg.startsWith("--config=") ? arg.slice("--config=".length) : null
    if (value === null) return fail(`arguments: unknown argument ${JSON.stringify(arg)}; usage: [--config FILE]`)
    if (value === undefined || value === "" || value.startsWith("--")) return fail("--config: expected a file name")
    if (configFile !== undefined) return fail("--config: given more than once")
    configFile = value
  }
  return Either.right({ configFile })
}

type Tree = { readonly [key: string]: unknown }

const isMap = (value: unknown): value is Tree =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const describeValue = (value: unknown) =>
  value === null ? "nothing" : Array.isArray(value) ? "a list" : isMap(value) ? "a mapping" : JSON.stringify(value)

const leaves: ReadonlySet<string> = new Set(knownKeys)
const isBranch = (key: string) => knownKeys.some((known) => known.startsWith(`${key}.`))

interface Inspection {
  readonly warnings: Array<string>
  readonly problems: Array<string>
}

/** Keeps only the known keys, so the provider never sees anything the checks here did not look at. */
const prune = (node: Tree, prefix: string, found: Inspection): Tree => {
  const kept: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(node)) {
    const key = prefix === "" ? name : `${prefix}.${name}`
    if (name.includes(".")) {
      const hint = "nest the keys instead of joining them with dots"
      found.warnings.push(`config: key ${JSON.stringify(key)} is ignored; ${hint}`)
    } else if (!leaves.has(key) && !isBranch(key)) {
      found.warnings.push(`config: unknown key ${key} is ignored`)
    } else if (isBranch(key)) {
      if (value === null || isMap(value)) kept[name] = value === null ? null : prune(value, key, found)
      else found.problems.push(`${key}: expected a mapping, got ${describeValue(value)}`)
    } else if (Array.isArray(value) && listKeys.has(key)) {
      const bad = value.find((item) => typeof item !== "string")
      if (bad !== undefined) found.problems.push(`${key}: expected a list of strings, got ${describeValue(bad)} in it`)
      // fromJson turns an empty list into the value "<nil>"
      else if (value.length > 0) kept[name] = value
    } else if (value !== null && typeof value !== "string") {
      found.problems.push(`${key}: expected a single value, got ${describeValue(value)}`)
    } else {
      kept[name] = value
    }
  }
  return kept
}

// Only `null` keeps its YAML type: every other scalar stays the text as written (`0123`, `1.10`, `1h`), so
// the Config descriptors parse what the user wrote, not YAML's reading of it.
const plainScalars = new Set(["tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool"])
const yamlOptions: YAML.ParseOptions & YAML.DocumentOptions & YAML.SchemaOptions = {
  customTags: (tags) => tags.filter((tag) => typeof tag === "string" || !plainScalars.has(tag.tag)),
  logLevel: "error"
}

const firstLine = (text: string) => text.split("\n")[0]!.trim().replace(/:$/, "")

const fsProblem = (cause: unknown) => {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code
  return code === "ENOENT" ? "not found"
    : code === "EISDIR" ? "is a directory, not a file"
    : code === "EACCES" || code === "EPERM" ? "permission denied"
    : firstLine(String(cause instanceof Error ? cause.message : cause))
}

const readConfigFile = (file: string, cwd: string) =>
  Effect.gen(function*() {
    const failWith = (problem: string) => new ConfigLoadError({ message: `config file ${file}: ${problem}` })
    const text = yield* Effect.try({
      try: () => fs.readFileSync(path.resolve(cwd, file), "utf8"),
      catch: (cause) => failWith(fsProblem(cause))
    })
    const parsed: unknown = yield* Effect.try({
      try: () => YAML.parse(text, yamlOptions),
      catch: (cause) => failWith(`invalid YAML: ${firstLine(cause instanceof Error ? cause.message : String(cause))}`)
    })
    if (parsed === null || parsed === undefined) return yield* failWith("is empty")
    if (!isMap(parsed)) return yield* failWith(`expected a mapping at the top level, got ${describeValue(parsed)}`)
    const found: Inspection = { warnings: [], problems: [] }
    const tree = prune(parsed, "", found)
    if (found.problems.length > 0) return yield* new ConfigLoadError({ message: found.problems[0]! })
    return { tree, warnings: found.warnings }
  })

interface EnvValue {
  readonly variable: string
  readonly value: string
}

/** `runs.watchBufferSize` → `RUNS_WATCHBUFFERSIZE`, then `RUNS_WATCH_BUFFER_SIZE`. */
const variableNames = (key: string) => {
  const upper = (text: string) => text.toUpperCase().replace(/[.-]/g, "_")
  return [...new Set([upper(key), upper(key.replace(/([a-z0-9])([A-Z])/g, "$1_$2"))])]
}

// Only the known keys are looked up, so unrelated variables (`DATABASE_URL`, ...) never change anything.
const fromEnvironment = (env: Record<string, string | undefined>): ReadonlyMap<string, EnvValue> =>
  new Map(knownKeys.flatMap((key) => {
    const variable = variableNames(key).find((name) => env[name] !== undefined && env[name] !== "")
    return variable === undefined ? [] : [[key, { variable, value: env[variable]! }] as const]
  }))

const chooseDatabase = (tree: Tree, env: ReadonlyMap<string, EnvValue>) => {
  const inFile = isMap(tree["database"]) ? tree["database"] : {}
  const fromEnv = (prefix: string) =>
    [...env].filter(([key]) => key.startsWith(prefix)).map(([, { variable }]) => variable)
  const postgresVariables = fromEnv("database.postgres.")
  const postgres = "postgres" in inFile || postgresVariables.length > 0
  const sqlite = "sqlite" in inFile || env.has("database.sqlite.file")
  if (!(postgres && sqlite)) return Either.right(postgres ? "postgres" as const : "sqlite" as const)
  const variables = [...fromEnv("database.sqlite."), ...postgresVariables]
  return fail(
    "database: set either database.sqlite or database.postgres, not both" +
      (variables.length > 0 ? ` (environment: ${variables.join(", ")})` : "")
  )
}

const problemLeaves = (error: ConfigError.ConfigError): ReadonlyArray<ConfigError.ConfigError> =>
  error._op === "And" || error._op === "Or" ? [...problemLeaves(error.left), ...problemLeaves(error.right)] : [error]

const describeError = (error: ConfigError.ConfigError, env: ReadonlyMap<string, EnvValue>) => {
  const all = problemLeaves(error)
  const leaf = all.find((e) => e._op === "InvalidData") ?? all[0]!
  const key = "path" in leaf ? leaf.path.join(".") : "config"
  const message = "message" in leaf ? leaf.message : String(error)
  const variable = env.get(key)?.variable
  return `${key}: ${message}${variable === undefined ? "" : ` (from ${variable})`}`.replace(/\s*\n\s*/g, " ")
}

/**
 * Defaults, then the `--config` file (none without the flag), then environment variables for single keys.
 * Unknown keys in the file are warnings; anything else wrong is one `ConfigLoadError` line naming the key.
 */
export const loadConfig = (options: {
  readonly argv: ReadonlyArray<string>
  readonly env: Record<string, string | undefined>
  readonly cwd: string
}): Effect.Effect<{ readonly config: AppConfig; readonly warnings: ReadonlyArray<string> }, ConfigLoadError> =>
  Effect.gen(function*() {
    const { configFile } = yield* parseArgs(options.argv)
    const file = configFile === undefined
      ? { tree: {}, warnings: [] }
      : yield* readConfigFile(configFile, options.cwd)
    const env = fromEnvironment(options.env)
    const database = yield* chooseDatabase(file.tree, env)
    const provider = ConfigProvider.fromMap(
      new Map([...env].map(([key, { value }]) => [key, value])),
      { pathDelim: "." }
    ).pipe(ConfigProvider.orElse(() => ConfigProvider.fromJson(file.tree)))
    const config = yield* Effect.withConfigProvider(appConfig(database, options.cwd), provider).pipe(
      Effect.mapError((error) => new ConfigLoadError({ message: describeError(error, env) }))
    )
    return { config, warnings: file.warnings }
  })
