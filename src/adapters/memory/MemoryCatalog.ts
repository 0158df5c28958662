import { Effect, Option } from "effect"
import { catalogPage } from "../../domain/CatalogQuery.js"
import type { TaskKey } from "../../domain/Ids.js"
import { projectFieldValue, projectOfRuns, type ProjectRecord } from "../../domain/Project.js"
import type { RunRecord, TaskRecord } from "../../domain/Records.js"
import { inTaskScope, isLaterVersion, taskFieldValue } from "../../domain/TaskCatalog.js"
import { ProjectExists, type RunStore } from "../../ports/RunStore.js"

export const taskKeyText = (key: TaskKey) => `${key.project}/${key.domain}/${key.name}/${key.version}`

type CatalogMembers = Pick<
  RunStore["Type"],
  "createProject" | "getProject" | "saveProject" | "listProjects" | "deployTask" | "listTasks" | "listTaskVersions"
>

/**
 * The RunStore's projects and tasks in memory, over the run store's own tasks and runs; `atomic` is its lock.
 */
export const makeCatalog = (options: {
  readonly atomic: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E>
  readonly runs: () => Iterable<RunRecord>
  readonly tasks: Map<string, TaskRecord>
}): CatalogMembers => {
  const { atomic, tasks } = options
  const projects = new Map<string, ProjectRecord>()
  const hasRuns = (id: string) => {
    for (const run of options.runs()) if (run.key.project === id) return true
    return false
  }
  const allProjects = () => {
    const listed = new Map(projects)
    for (const run of options.runs()) {
      if (!listed.has(run.key.project)) listed.set(run.key.project, projectOfRuns(run.key.project))
    }
    return Array.from(listed.values())
  }

  return {
    createProject: (project) =>
      atomic(Effect.suspend(() => {
        if (projects.has(project.id) || hasRuns(project.id)) return Effect.fail(new ProjectExists({ id: project.id }))
        projects.set(project.id, { ...project, stored: true })
        return Effect.void
      })),
    getProject: (id) =>
      atomic(Effect.sync(() => {
        const stored = projects.get(id)
        if (stored !== undefined) return Option.some(stored)
        return hasRuns(id) ? Option.some(projectOfRuns(id)) : Option.none()
      })),
    saveProject: (project) => atomic(Effect.sync(() => void projects.set(project.id, { ...project, stored: true }))),
    listProjects: (query) => atomic(Effect.sync(() => catalogPage(allProjects(), query, projectFieldValue))),
    deployTask: (task) =>
      atomic(Effect.sync(() => {
        const text = taskKeyText(task.key)
        const stored = tasks.get(text)
        if (stored !== undefined) return stored
        tasks.set(text, task)
        return task
      })),
    listTasks: (scope, query) =>
      atomic(Effect.sync(() => {
        const latest = new Map<string, TaskRecord>()
        for (const task of tasks.values()) {
          if (!inTaskScope(scope, task)) continue
          const name = `${task.key.project}/${task.key.domain}/${task.key.name}`
          const current = latest.get(name)
          if (current === undefined || isLaterVersion(task, current)) latest.set(name, task)
        }
        return catalogPage(Array.from(latest.values()), query, taskFieldValue)
      })),
    listTaskVersions: (name, query) =>
      atomic(Effect.sync(() =>
        catalogPage(
          Array.from(tasks.values()).filter((task) =>
            task.key.project === name.project && task.key.domain === name.domain && task.key.name === name.name
          ),
          query,
          taskFieldValue
        )
      ))
  }
}
