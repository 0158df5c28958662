import type { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Option } from "effect"
import type { Page } from "../../domain/ListQuery.js"
import { type ProjectField, projectFieldValue, projectList, type ProjectRecord, ProjectState } from "../../domain/Project.js"
import type { TaskRecord } from "../../domain/Records.js"
import { type TaskField, taskFieldValue, taskList, versionList, type VersionField } from "../../domain/TaskCatalog.js"
import { ProjectExists, type RunStore, type StoreUnavailable } from "../../ports/RunStore.js"
import { withSpanWhenTraced } from "../../ports/Spans.js"
import { projectStates } from "../../../migrations/0002_catalog.js"
import { catalogSql } from "./SqlCatalogQuery.js"
import type { JsonReader } from "./SqlPayloads.js"
import { dateOf, iso, taskColumnList, taskOfRow, type TaskRow, taskRow } from "./SqlRows.js"
import { refail } from "./SqlStoreErrors.js"

type CatalogMembers = Pick<
  RunStore["Type"],
  "createProject" | "getProject" | "saveProject" | "listProjects" | "deployTask" | "listTasks" | "listTaskVersions"
>

interface ProjectRow {
  readonly id: string
  readonly name: string
  readonly description: string
  readonly labels: unknown
  readonly state: string
  readonly org: string
  readonly domains: unknown
  readonly created_at: string | null
  readonly updated_at: string | null
  readonly stored: number
}

const stateNames: Record<ProjectState, (typeof projectStates)[number]> = {
  [ProjectState.ACTIVE]: "ACTIVE",
  [ProjectState.ARCHIVED]: "ARCHIVED",
  [ProjectState.SYSTEM_GENERATED]: "SYSTEM_GENERATED",
  [ProjectState.SYSTEM_ARCHIVED]: "SYSTEM_ARCHIVED"
}
const stateNumberSql = (column: string) =>
  `CASE ${column} ${Object.entries(stateNames).map(([n, name]) => `WHEN '${name}' THEN ${n}`).join(" ")} ELSE 0 END`

const projectColumns: Record<ProjectField, string> = {
  id: "p.id",
  name: "p.name",
  description: "p.description",
  state: stateNumberSql("p.state")
}

const taskColumns: Record<TaskField, string> = {
  project: "t.project",
  domain: "t.domain",
  name: "t.name",
  version: "t.version",
  deployed_by: "COALESCE(t.deployed_by, '')",
  created_at: "t.created_at",
  is_entrypoint: "COALESCE(t.is_entrypoint, 0)"
}

const versionColumns: Record<VersionField, string> = { version: "t.version", created_at: "t.created_at" }

/*
 * The distinct projects of `runs`, one index lookup each (a loose index scan on `runs_scope_created_idx`): a
 * project list must not read every run. Both databases run it as written.
 */
const runProjects = `WITH RECURSIVE run_projects(project) AS (
    SELECT MIN(project) FROM runs
    UNION ALL
    SELECT (SELECT MIN(r.project) FROM runs r WHERE r.project > run_projects.project)
    FROM run_projects WHERE run_projects.project IS NOT NULL
  )`

/** Every project: the stored ones, then those only runs name (`stored` 0, as `projectOfRuns` describes them). */
const allProjects = `SELECT id, name, description, labels, state, org, domains, created_at, updated_at, 1 AS stored
    FROM projects
    UNION ALL
    SELECT project, project, '', NULL, 'ACTIVE', '', NULL, NULL, NULL, 0 FROM run_projects
    WHERE project IS NOT NULL AND NOT EXISTS (SELECT 1 FROM projects s WHERE s.id = run_projects.project)`

const labelsJson = (labels: ProjectRecord["labels"]) => JSON.stringify(Object.fromEntries(labels))

const projectRow = (project: ProjectRecord) => ({
  id: project.id,
  name: project.name,
  description: project.description,
  labels: labelsJson(project.labels),
  state: stateNames[project.state],
  org: project.org,
  domains: project.domains === undefined ? null : JSON.stringify(project.domains),
  created_at: iso(project.createdAt ?? new Date(0)),
  updated_at: iso(project.updatedAt ?? new Date(0))
})

/** The RunStore's projects and tasks on SQLite and Postgres; `write` commits like the store's other writes. */
export const makeCatalog = (
  sql: SqlClient.SqlClient,
  readJson: JsonReader,
  write: <A, E>(name: string, body: Effect.Effect<A, E | SqlError>) => Effect.Effect<A, Exclude<E, SqlError> | StoreUnavailable>
): CatalogMembers => {
  const read = <A>(name: string, body: Effect.Effect<A, SqlError>) =>
    refail(body).pipe(withSpanWhenTraced(`SqlRunStore.${name}`, { captureStackTrace: false }))

  const parseJson = (value: unknown): unknown => (value === null ? null : JSON.parse(readJson(value)))

  const projectOfRow = (row: ProjectRow): ProjectRecord => {
    const labels = parseJson(row.labels)
    const domains = parseJson(row.domains)
    const state = Object.entries(stateNames).find(([, name]) => name === row.state)?.[0]
    return {
      id: row.id,
      name: row.name,
      description: row.description,
      labels: typeof labels === "object" && labels !== null
        ? Object.entries(labels).map(([key, value]) => [key, String(value)] as const)
        : [],
      state: (state === undefined ? ProjectState.ACTIVE : Number(state)) as ProjectState,
      org: row.org,
      domains: Array.isArray(domains) ? domains.map((domain) => String(domain)) : undefined,
      stored: Number(row.stored) === 1,
      createdAt: row.created_at === null ? undefined : dateOf(row.created_at),
      updatedAt: row.updated_at === null ? undefined : dateOf(row.updated_at)
    }
  }

  const page = <A>(rows: ReadonlyArray<A>, limit: number, cursor: (item: A) => Page<A>["next"]): Page<A> => {
    const items = rows.slice(0, limit)
    const last = items.at(-1)
    return { items, next: rows.length > limit && last !== undefined ? cursor(last) : undefined }
  }

  const readTask = (key: TaskRecord["key"]) =>
    Effect.map(
      sql<TaskRow>`SELECT ${sql.literal(taskColumnList)} FROM tasks WHERE project = ${key.project}
        AND domain = ${key.domain} AND name = ${key.name} AND version = ${key.version}`,
      (rows) => Option.map(Option.fromNullable(rows[0]), (row) => taskOfRow(row, readJson))
    )

  return {
    createProject: (project) =>
      write(
        "createProject",
        Effect.gen(function*() {
          const named = yield* sql<{ one: number }>`SELECT 1 AS one FROM runs WHERE project = ${project.id} LIMIT 1`
          if (named.length > 0) return yield* new ProjectExists({ id: project.id })
          const inserted = yield* sql<{ id: string }>`INSERT INTO projects ${sql.insert(projectRow(project))}
            ON CONFLICT (id) DO NOTHING RETURNING id`
          if (inserted.length === 0) return yield* new ProjectExists({ id: project.id })
        })
      ),

    getProject: (id) =>
      read(
        "getProject",
        Effect.map(
          sql<ProjectRow>`${sql.literal(runProjects)} SELECT * FROM (${sql.literal(allProjects)}) p WHERE p.id = ${id}
            ORDER BY p.stored DESC LIMIT 1`,
          (rows) => Option.map(Option.fromNullable(rows[0]), projectOfRow)
        )
      ),

    saveProject: (project) => {
      const row = projectRow(project)
      const { created_at: _created, id: _id, ...changed } = row
      return write(
        "saveProject",
        sql`INSERT INTO projects ${sql.insert(row)} ON CONFLICT (id) DO UPDATE SET ${sql.update(changed)}`.pipe(Effect.asVoid)
      )
    },

    listProjects: (query) => {
      const { conditions, orderBy } = catalogSql(sql, projectList, projectColumns, query)
      return read(
        "listProjects",
        Effect.map(
          sql<ProjectRow>`${sql.literal(runProjects)} SELECT * FROM (${sql.literal(allProjects)}) p
            WHERE ${sql.and(conditions)} ORDER BY ${orderBy} LIMIT ${query.limit + 1}`,
          (rows) =>
            page(rows.map(projectOfRow), query.limit, (project) =>
              query.order.map((key) => projectFieldValue(project, key.field)))
        )
      )
    },

    deployTask: (task) =>
      write(
        "deployTask",
        Effect.gen(function*() {
          yield* sql`INSERT INTO tasks ${sql.insert(taskRow(task))} ON CONFLICT (project, domain, name, version) DO NOTHING`
          const stored = yield* readTask(task.key)
          return Option.getOrElse(stored, () => task)
        })
      ),

    listTasks: (scope, query) => {
      const { conditions, orderBy } = catalogSql(sql, taskList, taskColumns, query)
      const inScope = scope.kind === "all" ? [] : [sql`t.project = ${scope.project}`, sql`t.domain = ${scope.domain}`]
      // The latest version of each name: no version of the same name deployed later (or, deployed at the same
      // time, with a higher version text).
      const latest = sql.literal(`NOT EXISTS (SELECT 1 FROM tasks n WHERE n.project = t.project AND n.domain = t.domain
        AND n.name = t.name AND (n.created_at > t.created_at OR (n.created_at = t.created_at AND n.version > t.version)))`)
      return read(
        "listTasks",
        Effect.map(
          sql<TaskRow>`SELECT ${sql.literal(taskColumnList)} FROM tasks t
            WHERE ${sql.and([...inScope, latest, ...conditions])} ORDER BY ${orderBy} LIMIT ${query.limit + 1}`,
          (rows) =>
            page(rows.map((row) => taskOfRow(row, readJson)), query.limit, (task) =>
              query.order.map((key) => taskFieldValue(task, key.field)))
        )
      )
    },

    listTaskVersions: (name, query) => {
      const { conditions, orderBy } = catalogSql(sql, versionList, versionColumns, query)
      return read(
        "listTaskVersions",
        Effect.map(
          sql<TaskRow>`SELECT ${sql.literal(taskColumnList)} FROM tasks t WHERE ${
            sql.and([
              sql`t.project = ${name.project}`,
              sql`t.domain = ${name.domain}`,
              sql`t.name = ${name.name}`,
              ...conditions
            ])
          } ORDER BY ${orderBy} LIMIT ${query.limit + 1}`,
          (rows) =>
            page(rows.map((row) => taskOfRow(row, readJson)), query.limit, (task) =>
              query.order.map((key) => taskFieldValue(task, key.field)))
        )
      )
    }
  }
}
