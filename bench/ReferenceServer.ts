/**
 * The practical limit of CreateRun on this machine: a connect-node server with no framework that does only what
 * CreateRun cannot skip, on a database of its own with the service's schema (migrated by the bench first):
 * protovalidate, the fingerprint and the name check, the task spec's JSON and binary forms, the inputs file
 * (directory, write with fsync, renamed into place inside the transaction), one transaction of the run, root
 * action, task and outbox rows through prepared statements, the answer from the service's captured one, and
 * the dispatch (every 200 ms the pending outbox rows marked delivered, as the service's outbox worker does with
 * a dispatcher that only logs). No request ids, task ids or triggers (the bench sends none), and no change
 * notices for watchers (the service sends one with pg_notify on Postgres). Usage:
 * `node ReferenceServer.mjs '<json of ReferenceOptions>'`.
 */
import {
  clone,
  create,
  createRegistry,
  type DescFile,
  type DescMessage,
  fromBinary,
  type MessageShape,
  toBinary,
  toJson,
  toJsonString
} from "@bufbuild/protobuf"
import { timestampFromDate } from "@bufbuild/protobuf/wkt"
import { createValidator } from "@bufbuild/protovalidate"
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect"
import { connectNodeAdapter } from "@connectrpc/connect-node"
import { createHash, randomBytes, randomUUID } from "node:crypto"
import { readFileSync, renameSync, rmSync } from "node:fs"
import { mkdir, writeFile } from "node:fs/promises"
import { createServer } from "node:http2"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { Worker } from "node:worker_threads"
import type pg from "pg"
import { InputsSchema } from "#gen/flyteidl2/task/common_pb.js"
import { RunSpecSchema } from "#gen/flyteidl2/task/run_pb.js"
import { type TaskSpec, TaskSpecSchema } from "#gen/flyteidl2/task/task_definition_pb.js"
import {
  type CreateRunRequest,
  CreateRunRequestSchema,
  CreateRunResponseSchema,
  file_flyteidl2_workflow_run_service,
  RunService
} from "#gen/flyteidl2/workflow/run_service_pb.js"
import type { RunSource } from "#gen/flyteidl2/workflow/run_definition_pb.js"

export interface ReferenceOptions {
  readonly port: number
  /** A SQLite file, or a `postgres://` URL. */
  readonly database: string
  /** A folder: the runs' inputs go under `file://<storage>`. */
  readonly storage: string
  /** The service's binary answer to a CreateRun, the template of every answer. */
  readonly answerSample: string
  readonly compressMinBytes: number
  /** Where better-sqlite3 and pg are loaded from: a native addon is not bundled. */
  readonly nodeModulesOf: string
}

const options: ReferenceOptions = JSON.parse(process.argv[2] ?? "{}")
const load = createRequire(join(options.nodeModulesOf, "package.json"))
const storagePrefix = `file://${options.storage}`

const files = new Map<string, DescFile>()
const collect = (file: DescFile): void => {
  if (files.has(file.name)) return
  files.set(file.name, file)
  file.dependencies.forEach(collect)
}
collect(file_flyteidl2_workflow_run_service)
// JSON of `Any` values needs their types.
const registry = createRegistry(...files.values())

const validator = createValidator()

/** The request's violations but those real clients' empty orgs make (the service relaxes the same). */
const violations = (request: CreateRunRequest): string | undefined => {
  // An invalid result carries an error whose stack trace nothing reads; nearly every request has an empty org.
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    const result = validator.validate(CreateRunRequestSchema, request)
    if (result.kind === "valid") return undefined
    if (result.kind === "error") return "its values cannot be checked against the IDL's rules"
    const kept = result.violations.filter((violation) => {
      const last = violation.field.at(-1)
      const name = last?.kind === "field" ? last.name : ""
      return !(violation.ruleId === "string.min_len" && (name === "org" || name === "organization"))
    })
    const path = (violation: (typeof kept)[number]) =>
      violation.field.flatMap((item) => (item.kind === "field" || item.kind === "oneof" ? [item.name] : [])).join(".")
    return kept.length === 0 ? undefined : kept.map((violation) => `${path(violation)}: ${violation.message}`).join("; ")
  } finally {
    Error.stackTraceLimit = limit
  }
}

const withoutOrgs = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(withoutOrgs)
  if (typeof value !== "object" || value === null) return value
  return Object.fromEntries(
    Object.entries(value).filter(([key]) => key !== "org" && key !== "organization").map(([key, item]) => [key, withoutOrgs(item)])
  )
}

/** SHA-256 of the request's JSON with every org left out: the same request again is the same run. */
const fingerprintOf = (request: CreateRunRequest) =>
  createHash("sha256").update(JSON.stringify(withoutOrgs(toJson(CreateRunRequestSchema, request, { registry })))).digest("hex")

const dns1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/
const nameAlphabet = "bcdfghjklmnpqrstvwxz2456789"
const generatedName = () => `r${Array.from(randomBytes(19), (byte) => nameAlphabet[byte % nameAlphabet.length]).join("")}`

const runSources = ["RUN_SOURCE_UNSPECIFIED", "RUN_SOURCE_WEB", "RUN_SOURCE_CLI", "RUN_SOURCE_SCHEDULE_TRIGGER"]

interface Payload {
  readonly binary: Buffer
  readonly json: string
}

const payloadOf = <Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): Payload => {
  const binary = toBinary(schema, message)
  return {
    binary: Buffer.from(binary.buffer, binary.byteOffset, binary.byteLength),
    json: toJsonString(schema, message, { registry })
  }
}

// Every run without a run spec gets the same one: encoded once.
const defaultRunSpec = payloadOf(RunSpecSchema, create(RunSpecSchema, { rawDataStorage: { rawDataPrefix: storagePrefix } }))

/** What one CreateRun writes: the values of its four rows. */
interface NewRun {
  readonly org: string
  readonly project: string
  readonly domain: string
  readonly name: string
  readonly fingerprint: string
  readonly runSpec: Payload
  readonly task: TaskSpec
  readonly taskSpec: Payload
  readonly source: RunSource
  readonly inputUri: string
  readonly runOutputBase: string
  readonly now: string
}

/** The run's key taken already: the fingerprint and creation time of the run that has it. */
interface Taken {
  readonly fingerprint: string | null
  readonly createdAt: string
}

interface Store {
  /** Inserts the four rows in one transaction, calling `publish` once the name is known to be free. */
  readonly create: (run: NewRun, publish: () => void) => Promise<Taken | undefined>
  readonly dispatch: (now: string) => Promise<void>
}

const sqliteStore = (file: string): Store => {
  interface Statement {
    run(...params: ReadonlyArray<unknown>): unknown
    get(...params: ReadonlyArray<unknown>): unknown
  }
  interface Database {
    prepare(text: string): Statement
    pragma(text: string): unknown
    transaction<A extends ReadonlyArray<unknown>, R>(body: (...args: A) => R): (...args: A) => R
  }
  const driver = load.resolve("better-sqlite3")
  const Sqlite = load(driver) as new(file: string) => Database
  const db = new Sqlite(file)
  // The service's settings.
  db.pragma("journal_mode = WAL")
  db.pragma("busy_timeout = 5000")
  db.pragma("foreign_keys = ON")
  db.pragma("synchronous = NORMAL")
  // Checkpoints from a thread of their own, as the service does: in the COMMIT that crosses SQLite's threshold
  // they would hold the event loop for milliseconds.
  const checkpointer = new Worker(
    `const { workerData } = require("node:worker_threads")
    const db = new (require(workerData.driver))(workerData.file, { fileMustExist: true })
    setInterval(() => { try { db.pragma("wal_checkpoint(PASSIVE)") } catch (error) { if (error.code !== "SQLITE_BUSY") throw error } }, 1000)`,
    { eval: true, workerData: { driver, file } }
  )
  checkpointer.on("error", () => db.pragma("wal_autocheckpoint = 1000"))
  db.pragma("wal_autocheckpoint = 0")

  const insertRun = db.prepare(`INSERT INTO runs (org, project, domain, name, root_action_name, run_spec, run_spec_pb,
    fingerprint, created_at, updated_at) VALUES (?, ?, ?, ?, 'a0', ?, ?, ?, ?, ?)
    ON CONFLICT (project, domain, name) DO NOTHING RETURNING id`)
  const takenRun = db.prepare("SELECT fingerprint, created_at AS createdAt FROM runs WHERE project = ? AND domain = ? AND name = ?")
  const insertRoot = db.prepare(`INSERT INTO actions (project, domain, run_name, name, run_id, org, action_type, phase,
    phase_number, attempts, task_org, task_project, task_domain, task_name, task_version, task_type, short_name,
    function_name, environment_name, run_source, task_spec, task_spec_pb, input_uri, run_output_base, started_at,
    created_at, updated_at)
    VALUES (?, ?, ?, 'a0', ?, ?, 'TASK', 'PHASE_QUEUED', 1, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
  const insertTask = db.prepare(`INSERT INTO tasks (org, project, domain, name, version, spec, spec_pb, created_at,
    updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (project, domain, name, version) DO NOTHING`)
  const insertEnqueue = db.prepare(`INSERT INTO outbox (project, domain, run_name, action_name, kind, state, attempts,
    next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, 'a0', 'enqueue', 'pending', 0, ?, ?, ?)`)
  const delivered = db.prepare(
    "UPDATE outbox SET state = 'delivered', delivered_at = ?, updated_at = ? WHERE state = 'pending' AND next_attempt_at <= ?"
  )

  const create = db.transaction((run: NewRun, publish: () => void): Taken | undefined => {
    const inserted = insertRun.get(run.org, run.project, run.domain, run.name, run.runSpec.json, run.runSpec.binary,
      run.fingerprint, run.now, run.now) as { id: number } | undefined
    if (inserted === undefined) return takenRun.get(run.project, run.domain, run.name) as Taken
    publish()
    const id = run.task.taskTemplate?.id
    insertRoot.run(run.project, run.domain, run.name, inserted.id, run.org, id?.org ?? "", id?.project ?? "",
      id?.domain ?? "", id?.name ?? "", id?.version ?? "", run.task.taskTemplate?.type ?? "", run.task.shortName || null,
      id?.name ?? "", run.task.environment?.name || null, runSources[run.source] ?? runSources[0], run.taskSpec.json, run.taskSpec.binary, run.inputUri,
      run.runOutputBase, run.now, run.now, run.now)
    insertTask.run(id?.org ?? "", id?.project ?? "", id?.domain ?? "", id?.name ?? "", id?.version ?? "", run.taskSpec.json,
      run.taskSpec.binary, run.now, run.now)
    insertEnqueue.run(run.project, run.domain, run.name, run.now, run.now, run.now)
    return undefined
  })
  return {
    create: async (run, publish) => create(run, publish),
    dispatch: async (now) => void delivered.run(now, now, now)
  }
}

const postgresStore = (url: string): Store => {
  const { Pool } = load("pg") as typeof pg
  // The service's pool size in the bench.
  const pool = new Pool({ connectionString: url, max: 20 })
  pool.on("error", () => undefined)
  const insertRun = {
    name: "insert-run",
    text: `INSERT INTO runs (org, project, domain, name, root_action_name, run_spec, run_spec_pb, fingerprint, created_at,
      updated_at) VALUES ($1, $2, $3, $4, 'a0', $5, $6, $7, $8, $8)
      ON CONFLICT (project, domain, name) DO NOTHING RETURNING id`
  }
  const takenRun = {
    name: "taken-run",
    text: `SELECT fingerprint, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "createdAt"
      FROM runs WHERE project = $1 AND domain = $2 AND name = $3`
  }
  // One statement for the other three rows, as the service writes them: one round trip.
  const insertRows = {
    name: "insert-rows",
    text: `WITH root AS (INSERT INTO actions (project, domain, run_name, name, run_id, org, action_type, phase, phase_number,
      attempts, task_org, task_project, task_domain, task_name, task_version, task_type, short_name, function_name,
      environment_name, run_source, task_spec, task_spec_pb, input_uri, run_output_base, started_at, created_at, updated_at)
      VALUES ($1, $2, $3, 'a0', $4, $5, 'TASK', 'PHASE_QUEUED', 1, 1, $6, $7, $8, $9, $10, $11, $12, $9, $13, $14, $15, $16,
        $17, $18, $19, $19, $19)),
    task AS (INSERT INTO tasks (org, project, domain, name, version, spec, spec_pb, created_at, updated_at)
      VALUES ($6, $7, $8, $9, $10, $15, $16, $19, $19) ON CONFLICT (project, domain, name, version) DO NOTHING)
    INSERT INTO outbox (project, domain, run_name, action_name, kind, state, attempts, next_attempt_at, created_at,
      updated_at) VALUES ($1, $2, $3, 'a0', 'enqueue', 'pending', 0, $19, $19, $19)`
  }
  const delivered = {
    name: "delivered",
    text: `UPDATE outbox SET state = 'delivered', delivered_at = $1, updated_at = $1
      WHERE state = 'pending' AND next_attempt_at <= $1`
  }
  return {
    create: async (run, publish) => {
      const client = await pool.connect()
      try {
        await client.query("BEGIN")
        const inserted = await client.query<{ id: string }>({
          ...insertRun,
          values: [run.org, run.project, run.domain, run.name, run.runSpec.json, run.runSpec.binary, run.fingerprint, run.now]
        })
        const runId = inserted.rows[0]?.id
        if (runId === undefined) {
          await client.query("ROLLBACK")
          return (await client.query<Taken>({ ...takenRun, values: [run.project, run.domain, run.name] })).rows[0]
        }
        publish()
        const id = run.task.taskTemplate?.id
        await client.query({
          ...insertRows,
          values: [run.project, run.domain, run.name, runId, run.org, id?.org ?? "", id?.project ?? "", id?.domain ?? "",
            id?.name ?? "", id?.version ?? "", run.task.taskTemplate?.type ?? "", run.task.shortName || null,
            run.task.environment?.name || null, runSources[run.source] ?? runSources[0], run.taskSpec.json, run.taskSpec.binary, run.inputUri,
            run.runOutputBase, run.now]
        })
        await client.query("COMMIT")
        return undefined
      } catch (error) {
        await client.query("ROLLBACK").catch(() => undefined)
        throw error
      } finally {
        client.release()
      }
    },
    dispatch: async (now) => void await pool.query({ ...delivered, values: [now] })
  }
}

const store = options.database.startsWith("postgres://") ? postgresStore(options.database) : sqliteStore(options.database)

const template = fromBinary(CreateRunResponseSchema, readFileSync(options.answerSample))

/** The service's answer for a new run, its fields that depend on the request filled in. */
const answer = (run: NewRun, createdAt: string) => {
  const message = clone(CreateRunResponseSchema, template)
  const action = message.run?.action
  if (action?.id?.run !== undefined) Object.assign(action.id.run, { org: run.org, project: run.project, domain: run.domain, name: run.name })
  if (action?.status !== undefined) action.status.startTime = timestampFromDate(new Date(createdAt))
  const metadata = action?.metadata
  if (metadata !== undefined) {
    const id = run.task.taskTemplate?.id
    metadata.environmentName = run.task.environment?.name ?? ""
    metadata.funtionName = id?.name ?? ""
    metadata.source = run.source
    if (metadata.spec.case === "task") {
      metadata.spec.value.taskType = run.task.taskTemplate?.type ?? ""
      metadata.spec.value.shortName = run.task.shortName
      if (id !== undefined && metadata.spec.value.id !== undefined) {
        Object.assign(metadata.spec.value.id, { org: id.org, project: id.project, domain: id.domain, name: id.name, version: id.version })
      }
    }
  }
  return message
}

const createRun = async (request: CreateRunRequest) => {
  const problem = violations(request)
  if (problem !== undefined) throw new ConnectError(`invalid CreateRunRequest: ${problem}`, Code.InvalidArgument)
  if (request.task.case !== "taskSpec") throw new ConnectError("this server takes a task_spec only", Code.Unimplemented)
  const fingerprint = fingerprintOf(request)
  const id = request.id.case === "runId"
    ? { org: request.id.value.org, project: request.id.value.project, domain: request.id.value.domain, name: request.id.value.name }
    : { org: request.id.value?.organization ?? "", project: request.id.value?.name ?? "", domain: request.id.value?.domain ?? "", name: generatedName() }
  if (id.name.length > 30 || !dns1035.test(id.name)) {
    throw new ConnectError(`run_id.name: invalid run name "${id.name}"`, Code.InvalidArgument)
  }
  const task = request.task.value
  const base = `${storagePrefix}/${id.project}/${id.domain}/${id.name}`
  const run: NewRun = {
    ...id,
    fingerprint,
    runSpec: request.runSpec === undefined ? defaultRunSpec : payloadOf(RunSpecSchema, request.runSpec),
    task,
    taskSpec: payloadOf(TaskSpecSchema, task),
    source: request.source,
    inputUri: request.inputWrapper.case === "offloadedInputData"
      ? `${request.inputWrapper.value.uri.replace(/\/+$/, "")}/inputs.pb`
      : `${base}/inputs/inputs.pb`,
    runOutputBase: `${base}/`,
    now: new Date().toISOString()
  }
  // Inline inputs (and the task's defaults for those not given) to a file beside its place, moved there once the
  // run's name is known to be free.
  let staged: { readonly temp: string; readonly target: string } | undefined
  if (request.inputWrapper.case !== "offloadedInputData") {
    const given = request.inputWrapper.case === "inputs" ? request.inputWrapper.value : undefined
    const present = new Set(given?.literals.map((literal) => literal.name))
    const defaults = task.defaultInputs.flatMap((input) =>
      !present.has(input.name) && input.parameter?.behavior.case === "default"
        ? [{ name: input.name, value: input.parameter.behavior.value }]
        : []
    )
    const inputs = toBinary(InputsSchema, create(InputsSchema, {
      literals: [...(given?.literals ?? []), ...defaults],
      context: given?.context ?? []
    }))
    const target = join(options.storage, id.project, id.domain, id.name, "inputs", "inputs.pb")
    const temp = join(dirname(target), `.inputs.pb.${randomUUID()}.tmp`)
    await mkdir(dirname(target), { recursive: true })
    await writeFile(temp, inputs, { flag: "wx", flush: true })
    staged = { temp, target }
  }
  let published = false
  try {
    const taken = await store.create(run, () => {
      if (staged !== undefined) renameSync(staged.temp, staged.target)
      published = true
    })
    if (taken === undefined) return answer(run, run.now)
    if (taken.fingerprint !== fingerprint) {
      throw new ConnectError(`run ${id.project}/${id.domain}/${id.name} already exists (created by a different request)`, Code.AlreadyExists)
    }
    return answer(run, taken.createdAt)
  } finally {
    if (staged !== undefined && !published) rmSync(staged.temp, { force: true })
  }
}

const routes = (router: ConnectRouter) => {
  router.service(RunService, { createRun })
}

const dispatch = setInterval(() => {
  store.dispatch(new Date().toISOString()).catch(() => undefined)
}, 200)
dispatch.unref()

createServer({}, connectNodeAdapter({ routes, compressMinBytes: options.compressMinBytes })).listen(options.port, "127.0.0.1", () => {
  process.stdout.write("listening\n")
})
process.on("SIGTERM", () => process.exit(0))
