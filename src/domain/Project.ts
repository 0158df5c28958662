import type { CatalogSchema } from "./CatalogQuery.js"

/** `flyteidl2.project.ProjectState`. */
export const ProjectState = {
  ACTIVE: 0,
  ARCHIVED: 1,
  SYSTEM_GENERATED: 2,
  SYSTEM_ARCHIVED: 3
} as const
export type ProjectState = (typeof ProjectState)[keyof typeof ProjectState]

export const isProjectState = (n: number): n is ProjectState => Object.values<number>(ProjectState).includes(n)

/** A project: a row of `projects`, or (`stored` false) a project known only from its runs. */
export interface ProjectRecord {
  readonly id: string
  readonly name: string
  readonly description: string
  readonly labels: ReadonlyArray<readonly [key: string, value: string]>
  readonly state: ProjectState
  readonly org: string
  /** The project's own domains; undefined means the configured ones (`runs.domains`). */
  readonly domains: ReadonlyArray<string> | undefined
  readonly stored: boolean
  readonly createdAt: Date | undefined
  readonly updatedAt: Date | undefined
}

/** A project as never created: what a project known only from its runs looks like. */
export const projectOfRuns = (id: string): ProjectRecord => ({
  id,
  name: id,
  description: "",
  labels: [],
  state: ProjectState.ACTIVE,
  org: "",
  domains: undefined,
  stored: false,
  createdAt: undefined,
  updatedAt: undefined
})

const stateNumber = (text: string): number | undefined => {
  if (/^[0-9]+$/.test(text)) return isProjectState(Number(text)) ? Number(text) : undefined
  const upper = text.toUpperCase()
  const name = upper.startsWith("PROJECT_STATE_") ? upper.slice("PROJECT_STATE_".length) : upper
  return Object.hasOwn(ProjectState, name) ? ProjectState[name as keyof typeof ProjectState] : undefined
}

export type ProjectField = "id" | "name" | "description" | "state"

/** ListProjects: by id unless asked otherwise (a project picker reads best in that order). */
export const projectList: CatalogSchema<ProjectField> = {
  list: "projects",
  fields: {
    id: { kind: "text" },
    name: { kind: "text" },
    description: { kind: "text" },
    state: {
      kind: "number",
      parse: stateNumber,
      expected: "a project state 0-3 or a name like ACTIVE, ARCHIVED or PROJECT_STATE_ARCHIVED"
    }
  },
  aliases: { identifier: "id" },
  defaultOrder: [{ field: "id", direction: "ASC" }],
  uniqueKey: ["id"]
}

export const projectFieldValue = (project: ProjectRecord, field: ProjectField): string | number =>
  field === "state" ? project.state : project[field]

const dns1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/

/** Why `id` cannot identify a project (a DNS-1123 label of at most 63 characters, like a run's project), or
 * undefined when it can. */
export const projectIdProblem = (id: string): string | undefined => {
  if (id === "") return "must not be empty"
  if (id.length > 63) return `must be at most 63 characters (has ${id.length})`
  if (!dns1123.test(id)) {
    return "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit"
  }
  return undefined
}

export const maxProjectNameLength = 64
export const maxProjectDescriptionLength = 300
