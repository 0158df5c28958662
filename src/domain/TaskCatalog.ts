import type { CatalogSchema } from "./CatalogQuery.js"
import type { FieldValue } from "./ListQuery.js"
import type { TaskRecord } from "./Records.js"

/** Where ListTasks looks: every project (`org`), or one project and domain. */
export type TaskScope =
  | { readonly kind: "all" }
  | { readonly kind: "project"; readonly project: string; readonly domain: string }

/** A task without its version (ListVersions). */
export interface TaskName {
  readonly project: string
  readonly domain: string
  readonly name: string
}

export type TaskField = "project" | "domain" | "name" | "version" | "deployed_by" | "created_at" | "is_entrypoint"
export type VersionField = "version" | "created_at"

const booleanNumber = (text: string): number | undefined =>
  /^(1|true)$/i.test(text) ? 1 : /^(0|false)$/i.test(text) ? 0 : undefined

/** ListTasks: the latest version of each task, most recently deployed first. */
export const taskList: CatalogSchema<TaskField> = {
  list: "tasks",
  fields: {
    project: { kind: "text" },
    domain: { kind: "text" },
    name: { kind: "text" },
    version: { kind: "text" },
    deployed_by: { kind: "text" },
    created_at: { kind: "time" },
    is_entrypoint: { kind: "number", parse: booleanNumber, expected: "true, false, 1 or 0" }
  },
  aliases: { deployed_at: "created_at", task_name: "name" },
  defaultOrder: [{ field: "created_at", direction: "DESC" }],
  uniqueKey: ["project", "domain", "name", "version"]
}

/** ListVersions: newest first. */
export const versionList: CatalogSchema<VersionField> = {
  list: "versions",
  fields: { version: { kind: "text" }, created_at: { kind: "time" } },
  aliases: { deployed_at: "created_at" },
  defaultOrder: [{ field: "created_at", direction: "DESC" }],
  uniqueKey: ["version"]
}

/** A task's value of a list field (a missing creator reads as "", as in the run lists). */
export const taskFieldValue = (task: TaskRecord, field: TaskField): FieldValue => {
  switch (field) {
    case "project":
    case "domain":
    case "name":
    case "version":
      return task.key[field]
    case "deployed_by":
      return task.deployedBy ?? ""
    case "created_at":
      return task.createdAt.getTime()
    case "is_entrypoint":
      return task.entrypoint === true ? 1 : 0
  }
}

/** Whether `a` is a later version of the same task than `b`: deployed later, or at the same time with a higher
 * version text (so that "latest" is always one row). */
export const isLaterVersion = (a: TaskRecord, b: TaskRecord): boolean =>
  a.createdAt.getTime() !== b.createdAt.getTime()
    ? a.createdAt.getTime() > b.createdAt.getTime()
    : a.key.version > b.key.version

export const inTaskScope = (scope: TaskScope, task: TaskRecord): boolean =>
  scope.kind === "all" || (task.key.project === scope.project && task.key.domain === scope.domain)
