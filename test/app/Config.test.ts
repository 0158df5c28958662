import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as util from "node:util"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, LogLevel, Redacted } from "effect"
import { ConfigLoadError, loadConfig, parseArgs } from "../../src/app/Config.js"

const repo = path.resolve(import.meta.dirname, "../..")

const tempDirs: Array<string> = []
const tempDir = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runs-config-"))
  tempDirs.push(dir)
  return dir
}
afterAll(() => tempDirs.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })))

const withFile = (yaml: string, env: Record<string, string> = {}) => {
  const cwd = tempDir()
  fs.writeFileSync(path.join(cwd, "c.yaml"), yaml)
  return loadConfig({ argv: ["--config", "c.yaml"], env, cwd })
}

const failure = (yaml: string | undefined, env: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const error = yield* Effect.flip(
      yaml === undefined ? loadConfig({ argv: [], env, cwd: tempDir() }) : withFile(yaml, env)
    )
    expect(error).toBeInstanceOf(ConfigLoadError)
    expect(error.message).not.toContain("\n")
    return error.message
  })

const millis = (duration: Duration.Duration) => Duration.toMillis(duration)

describe("loadConfig", () => {
  it.effect("uses the defaults without --config, whatever ./config.yaml says", () =>
    Effect.gen(function*() {
      const cwd = tempDir()
      fs.writeFileSync(path.join(cwd, "config.yaml"), "runs:\n  server:\n    port: 1\n")
      const { config, warnings } = yield* loadConfig({ argv: [], env: {}, cwd })
      expect(warnings).toEqual([])
      expect(config.server).toEqual({
        host: "0.0.0.0",
        port: 8090,
        corsOrigins: [],
        maxRequestBytes: 16 * 1024 * 1024,
        compressMinBytes: 16 * 1024,
        shutdownTimeout: Duration.seconds(10),
        headerTimeout: Duration.seconds(10),
        idleTimeout: Duration.minutes(2)
      })
      expect(config.watchBufferSize).toBe(100)
      expect(config.storagePrefix).toBe(`file://${path.join(cwd, "data")}`)
      expect(config.dispatcher).toBe("none")
      expect(config.actionsServiceUrl).toBe("http://localhost:8090")
      expect(millis(config.dispatchMaxAge)).toBe(24 * 3600_000)
      expect(config.trustForwardedIdentity).toBe(false)
      expect(config.identityHeader).toBe("X-Forwarded-User")
      expect(config.database).toEqual({ kind: "sqlite", file: "./runs.db" })
      expect(config.logger).toEqual({ level: LogLevel.Info, showSource: false, format: "text" })
      expect(config.metrics).toEqual({ enabled: true, port: undefined })
    }))

  it.effect("loads config.yaml as written", () =>
    Effect.gen(function*() {
      const argv = [`--config=${repo}/config.yaml`]
      const { config, warnings } = yield* loadConfig({ argv, env: {}, cwd: tempDir() })
      expect(warnings).toEqual([])
      expect(config.server.host).toBe("0.0.0.0")
      expect(config.server.port).toBe(8090)
      expect(config.watchBufferSize).toBe(100)
      expect(config.database).toEqual({ kind: "sqlite", file: "./runs.db" })
      expect(config.logger).toEqual({ level: LogLevel.Info, showSource: true, format: "text" })
    }))

  it.effect("loads config-postgres.yaml as written", () =>
    Effect.gen(function*() {
      const { config, warnings } = yield* loadConfig({ argv: ["--config", "config-postgres.yaml"], env: {}, cwd: repo })
      expect(warnings).toEqual([])
      const db = config.database
      if (db.kind !== "postgres") return expect.fail("expected postgres")
      expect({ ...db, password: Redacted.value(db.password), connMaxLifeTime: millis(db.connMaxLifeTime) }).toEqual({
        kind: "postgres",
        host: "localhost",
        port: 5432,
        dbname: "flyte_runs",
        username: "postgres",
        password: "postgres",
        extraOptions: "sslmode=disable",
        maxIdleConnections: 10,
        maxOpenConnections: 100,
        connMaxLifeTime: 3600_000
      })
      expect(config.logger).toEqual({ level: LogLevel.Info, showSource: true, format: "text" })
    }))

  it.effect("keeps the password out of printed config", () =>
    Effect.gen(function*() {
      const { config } = yield* withFile("database:\n  postgres:\n    password: s3cr3t-value\n")
      expect(JSON.stringify(config)).not.toContain("s3cr3t-value")
      expect(util.inspect(config, { depth: 10 })).not.toContain("s3cr3t-value")
      if (config.database.kind !== "postgres") return expect.fail("expected postgres")
      expect(String(config.database.password)).toBe("<redacted>")
      expect(Redacted.value(config.database.password)).toBe("s3cr3t-value")
    }))

  it.effect("reads every other key, keeping scalars as written", () =>
    Effect.gen(function*() {
      const { config } = yield* withFile([
        "runs:",
        "  server:",
        "    corsOrigins: [\"http://localhost:3000\", \"https://ui.example.com/\"]",
        "    maxRequestBytes: 1024",
        "    compressMinBytes: 0",
        "    shutdownTimeout: 500ms",
        "    headerTimeout: 3s",
        "    idleTimeout: 90s",
        "  storagePrefix: s3://bucket/runs/",
        "  dispatcher: actions",
        "  actionsServiceUrl: https://actions:8443",
        "  dispatchMaxAge: 1 hour",
        "  trustForwardedIdentity: yes",
        "  identityHeader: X-User",
        "database:",
        "  postgres: { password: 0123, host: 1.10 }",
        "logger: { level: DEBUG }"
      ].join("\n"))
      expect(config.server.corsOrigins).toEqual(["http://localhost:3000", "https://ui.example.com"])
      expect(config.server.maxRequestBytes).toBe(1024)
      expect(config.server.compressMinBytes).toBe(0)
      expect(millis(config.server.shutdownTimeout)).toBe(500)
      expect(millis(config.server.headerTimeout)).toBe(3_000)
      expect(millis(config.server.idleTimeout)).toBe(90_000)
      expect(config.storagePrefix).toBe("s3://bucket/runs")
      expect(config.dispatcher).toBe("actions")
      expect(config.actionsServiceUrl).toBe("https://actions:8443")
      expect(millis(config.dispatchMaxAge)).toBe(3600_000)
      expect(config.trustForwardedIdentity).toBe(true)
      expect(config.identityHeader).toBe("X-User")
      expect(config.logger.level).toBe(LogLevel.Debug)
      const db = config.database
      if (db.kind !== "postgres") return expect.fail("expected postgres")
      expect([db.host, Redacted.value(db.password), db.port, db.dbname]).toEqual(["1.10", "0123", 5432, "flyte_runs"])
    }))

  it.effect("parses Go durations", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [string, number]> = [
        ["1h", 3600_000], ["30m", 1800_000], ["90s", 90_000], ["1h30m", 5400_000], ["500ms", 500],
        ["1.5h", 5400_000], ["2m3.5s", 123_500], ["0", 0], ["10 seconds", 10_000]
      ]
      for (const [text, expected] of cases) {
        const { config } = yield* withFile(`database:\n  connMaxLifeTime: ${text}\n  postgres: {}\n`)
        if (config.database.kind !== "postgres") return expect.fail("expected postgres")
        expect([text, millis(config.database.connMaxLifeTime)]).toEqual([text, expected])
      }
    }))

  it.effect("maps the seed's numeric log levels and names", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [string, LogLevel.LogLevel]> = [
        ["0", LogLevel.Fatal], ["1", LogLevel.Fatal], ["2", LogLevel.Error], ["3", LogLevel.Warning],
        ["4", LogLevel.Info], ["5", LogLevel.Debug], ["6", LogLevel.Trace], ["panic", LogLevel.Fatal],
        ["Warn", LogLevel.Warning], ["warning", LogLevel.Warning], ["TRACE", LogLevel.Trace]
      ]
      for (const [text, expected] of cases) {
        const { config } = yield* withFile(`logger:\n  level: ${text}\n`)
        expect([text, config.logger.level]).toEqual([text, expected])
      }
    }))

  it.effect("lets environment variables override single keys, in both spellings", () =>
    Effect.gen(function*() {
      const { config } = yield* loadConfig({
        argv: ["--config", "config-postgres.yaml"],
        cwd: repo,
        env: {
          RUNS_SERVER_PORT: "9999",
          RUNS_WATCHBUFFERSIZE: "7",
          DATABASE_MAX_OPEN_CONNECTIONS: "3",
          DATABASE_POSTGRES_PASSWORD: "from-env",
          LOGGER_SHOW_SOURCE: "false",
          RUNS_SERVER_CORS_ORIGINS: "http://a.test, http://b.test:8080",
          DATABASE_URL: "postgres://ignored",
          RUNS_TEST_NOTHING: "x",
          LOGGER_LEVEL: "",
          LOGGER_FORMAT: "json",
          RUNS_METRICS_ENABLED: "false",
          RUNS_METRICS_PORT: "9464"
        }
      })
      expect(config.server.port).toBe(9999)
      expect(config.server.corsOrigins).toEqual(["http://a.test", "http://b.test:8080"])
      expect(config.watchBufferSize).toBe(7)
      expect(config.logger).toEqual({ level: LogLevel.Info, showSource: false, format: "json" })
      expect(config.metrics).toEqual({ enabled: false, port: 9464 })
      const db = config.database
      if (db.kind !== "postgres") return expect.fail("expected postgres")
      expect([db.maxOpenConnections, db.maxIdleConnections, db.host]).toEqual([3, 10, "localhost"])
      expect(Redacted.value(db.password)).toBe("from-env")
      const split = yield* loadConfig({ argv: [], cwd: repo, env: { RUNS_WATCH_BUFFER_SIZE: "8" } })
      expect(split.config.watchBufferSize).toBe(8)
    }))

  it.effect("chooses Postgres when a DATABASE_POSTGRES_ variable is set", () =>
    Effect.gen(function*() {
      const { config } = yield* loadConfig({ argv: [], cwd: repo, env: { DATABASE_POSTGRES_HOST: "db.local" } })
      expect(config.database.kind).toBe("postgres")
      if (config.database.kind === "postgres") expect(config.database.host).toBe("db.local")
    }))

  it.effect("warns about unknown keys instead of failing", () =>
    Effect.gen(function*() {
      const { config, warnings } = yield* withFile(
        "runs:\n  seedProjects: [a, b]\n  server:\n    port: 8091\nstorage:\n  type: minio\nqueueServiceUrl: http://q\n"
      )
      expect(config.server.port).toBe(8091)
      expect(warnings).toEqual([
        "config: unknown key runs.seedProjects is ignored",
        "config: unknown key storage is ignored",
        "config: unknown key queueServiceUrl is ignored"
      ])
    }))

  it.effect("takes origins as a list, an empty list or one comma-separated string", () =>
    Effect.gen(function*() {
      const empty = yield* withFile("runs:\n  server:\n    corsOrigins: []\n")
      expect(empty.config.server.corsOrigins).toEqual([])
      const joined = yield* withFile("runs:\n  server:\n    corsOrigins: http://a.test, https://b.test\n")
      expect(joined.config.server.corsOrigins).toEqual(["http://a.test", "https://b.test"])
    }))

  it.effect("warns about dotted keys, which are not read", () =>
    Effect.gen(function*() {
      const { config, warnings } = yield* withFile("runs.server.port: 1\n")
      expect(config.server.port).toBe(8090)
      expect(warnings).toEqual([
        "config: key \"runs.server.port\" is ignored; nest the keys instead of joining them with dots"
      ])
    }))

  it.effect("rejects bad values with one line naming the key", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [string, string]> = [
        ["runs:\n  server:\n    port: abc\n", "runs.server.port: expected a port number (1-65535), got \"abc\""],
        ["runs:\n  server:\n    port: 70000\n", "runs.server.port"],
        [
          "database:\n  sqlite: {file: a.db}\n  postgres: {host: x}\n",
          "database: set either database.sqlite or database.postgres, not both"
        ],
        ["logger:\n  level: loud\n", "logger.level"],
        ["logger:\n  show-source: maybe\n", "logger.show-source"],
        ["logger:\n  format: xml\n", "logger.format"],
        ["runs:\n  metrics:\n    port: 0\n", "runs.metrics.port"],
        ["runs:\n  metrics:\n    enabled: sometimes\n", "runs.metrics.enabled"],
        ["runs:\n  dispatcher: kafka\n", "runs.dispatcher: expected one of none, actions, got \"kafka\""],
        ["runs:\n  watchBufferSize: 0\n", "runs.watchBufferSize"],
        ["runs:\n  server:\n    maxRequestBytes: -1\n", "runs.server.maxRequestBytes"],
        ["runs:\n  storagePrefix: ./data\n", "runs.storagePrefix"],
        ["runs:\n  storagePrefix: file://relative/data\n", "runs.storagePrefix"],
        ["runs:\n  actionsServiceUrl: grpc://actions:80\n", "runs.actionsServiceUrl"],
        ["runs:\n  dispatchMaxAge: 0\n", "runs.dispatchMaxAge"],
        ["runs:\n  server:\n    corsOrigins: [example.com]\n", "runs.server.corsOrigins"],
        ["runs:\n  identityHeader: \"X User\"\n", "runs.identityHeader"],
        ["database:\n  connMaxLifeTime: 3600\n", "database.connMaxLifeTime"],
        ["database:\n  maxOpenConnections: lots\n", "database.maxOpenConnections"],
        ["database:\n  postgres:\n    port: 5432.5\n", "database.postgres.port"],
        ["database:\n  postgres: localhost\n", "database.postgres: expected a mapping"],
        ["runs:\n  server:\n    port:\n      value: 1\n", "runs.server.port: expected a single value, got a mapping"],
        ["runs: 5\n", "runs: expected a mapping"],
        ["", "config file c.yaml: is empty"],
        ["# only a comment\n", "config file c.yaml: is empty"],
        ["- a\n- b\n", "config file c.yaml: expected a mapping at the top level, got a list"],
        ["runs:\n  server:\n    port: [8090\n", "config file c.yaml: invalid YAML"],
        ["runs:\n  server: 1\n  server: 2\n", "line 3, column 3"]
      ]
      for (const [yaml, expected] of cases) {
        expect(yield* failure(yaml)).toContain(expected)
      }
    }))

  it.effect("rejects bad environment values, naming the key and the variable", () =>
    Effect.gen(function*() {
      expect(yield* failure("runs:\n  server:\n    port: 8090\n", { RUNS_SERVER_PORT: "x" })).toBe(
        "runs.server.port: expected a port number (1-65535), got \"x\" (from RUNS_SERVER_PORT)"
      )
      expect(yield* failure("database:\n  sqlite:\n    file: a.db\n", { DATABASE_POSTGRES_HOST: "localhost" })).toBe(
        "database: set either database.sqlite or database.postgres, not both (environment: DATABASE_POSTGRES_HOST)"
      )
      expect(yield* failure(undefined, { RUNS_DISPATCHER: "kafka" })).toContain("runs.dispatcher")
    }))

  it.effect("names a missing config file", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(loadConfig({ argv: ["--config", "./x.yaml"], env: {}, cwd: tempDir() }))
      expect(error.message).toBe("config file ./x.yaml: not found")
    }))
})

describe("parseArgs", () => {
  it("accepts --config FILE and --config=FILE", () => {
    expect(parseArgs([])).toEqual(Either.right({ configFile: undefined }))
    expect(parseArgs(["--config", "a.yaml"])).toEqual(Either.right({ configFile: "a.yaml" }))
    expect(parseArgs(["--config=b.yaml"])).toEqual(Either.right({ configFile: "b.yaml" }))
  })

  it("rejects anything else", () => {
    const bad = [["--verbose"], ["config.yaml"], ["--config"], ["--config="], ["--config", "a", "--config", "b"]]
    for (const argv of bad) {
      const result = parseArgs(argv)
      expect(Either.isLeft(result) && result.left instanceof ConfigLoadError).toBe(true)
    }
  })
})
