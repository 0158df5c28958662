import { Effect } from "effect"
import { InvalidArgument } from "./Errors.js"
import type { FilterInput } from "./ListRequest.js"
import { type ActionPhase, isActionPhase } from "./Phase.js"
import type { ActionRecord } from "./Records.js"

/** WatchActions' filters: PHASE with VALUE_IN (decimal phase numbers), NAME with CONTAINS_CASE_INSENSITIVE. */
export interface TreeFilter {
  readonly phases: ReadonlySet<ActionPhase> | undefined
  /** Lower case. */
  readonly name: string | undefined
}

const VALUE_IN = 7
const CONTAINS_CASE_INSENSITIVE = 14

/** The same text for the same filters, whatever order they came in. */
export const treeFilterKey = (filter: TreeFilter): string =>
  JSON.stringify([filter.phases === undefined ? null : Array.from(filter.phases).sort((a, b) => a - b), filter.name ?? null])

/** Parses WatchActions' filters; anything else is `InvalidArgument` naming it. */
export const parseTreeFilter = (filters: ReadonlyArray<FilterInput>): Effect.Effect<TreeFilter, InvalidArgument> =>
  Effect.suspend(() => {
    let phases: Set<ActionPhase> | undefined
    let name: string | undefined
    for (const [index, filter] of filters.entries()) {
      if (filter.field === "PHASE" && filter.function === VALUE_IN) {
        phases ??= new Set()
        for (const value of filter.values) {
          const phase = /^\d+$/.test(value.trim()) ? Number(value.trim()) : Number.NaN
          if (!isActionPhase(phase)) {
            return Effect.fail(new InvalidArgument({ message: `filter[${index}].values: invalid phase value "${value}" (a phase number is expected)` }))
          }
          phases.add(phase)
        }
      } else if (filter.field === "NAME" && filter.function === CONTAINS_CASE_INSENSITIVE) {
        const first = filter.values[0]
        if (first !== undefined) name = first.toLowerCase()
      } else {
        return Effect.fail(
          new InvalidArgument({
            message: `filter[${index}]: field "${filter.field}" with function ${filter.function} is not supported; ` +
              "WatchActions takes PHASE with VALUE_IN and NAME with CONTAINS_CASE_INSENSITIVE"
          })
        )
      }
    }
    return Effect.succeed({ phases, name })
  })

/** What NAME matches: the last `.`-separated part of the task name, else the action name. */
export const displayName = (action: ActionRecord): string =>
  action.task === undefined ? action.key.name : action.task.name.split(".").at(-1) ?? action.task.name

export const meetsFilter = (filter: TreeFilter, action: ActionRecord): boolean =>
  (filter.phases === undefined || filter.phases.has(action.phase)) &&
  (filter.name === undefined || displayName(action).toLowerCase().includes(filter.name))

/** One action as WatchActions sends it. */
export interface TreeEntry {
  readonly action: ActionRecord
  readonly meetsFilter: boolean
  /** Over all descendants; a phase that drops to zero stays, as 0. */
  readonly childrenPhaseCounts: ReadonlyMap<ActionPhase, number>
}

interface Node {
  action: ActionRecord
  readonly counts: Map<ActionPhase, number>
  /** Descendants that meet the filter. */
  matching: number
  /** Last sent with `meets_filter = true`. */
  shown: boolean
}

/**
 * A run's action tree as one WatchActions stream sees it. An action whose parent has not arrived is held
 * until it does. A node is shown when it meets the filter or has a descendant that does; one that stops
 * being shown is sent once with `meets_filter = false`.
 */
export type ActionTree = ReturnType<typeof makeActionTree>

export const makeActionTree = (filter: TreeFilter) => {
  const nodes = new Map<string, Node>()
  /** Held actions by the name of their missing parent. */
  const orphans = new Map<string, Map<string, ActionRecord>>()

  const ancestorsOf = (action: ActionRecord): ReadonlyArray<Node> => {
    const path: Array<Node> = []
    const seen = new Set([action.key.name])
    let parent = action.parent
    while (parent !== undefined && !seen.has(parent)) {
      const node = nodes.get(parent)
      if (node === undefined) break
      seen.add(parent)
      path.unshift(node)
      parent = node.action.parent
    }
    return path
  }

  const bump = (counts: Map<ActionPhase, number>, phase: ActionPhase, by: number) =>
    counts.set(phase, (counts.get(phase) ?? 0) + by)

  const insert = (action: ActionRecord, touched: Set<string>) => {
    nodes.set(action.key.name, { action, counts: new Map(), matching: 0, shown: false })
    const ancestors = ancestorsOf(action)
    const matches = meetsFilter(filter, action)
    for (const ancestor of ancestors) {
      bump(ancestor.counts, action.phase, 1)
      if (matches) ancestor.matching += 1
      touched.add(ancestor.action.key.name)
    }
    touched.add(action.key.name)
    const waiting = orphans.get(action.key.name)
    orphans.delete(action.key.name)
    for (const child of waiting?.values() ?? []) insert(child, touched)
  }

  const update = (node: Node, action: ActionRecord, touched: Set<string>) => {
    const before = node.action
    node.action = action
    const matchedBefore = meetsFilter(filter, before)
    const matchesNow = meetsFilter(filter, action)
    for (const ancestor of ancestorsOf(action)) {
      if (before.phase !== action.phase) {
        bump(ancestor.counts, before.phase, -1)
        bump(ancestor.counts, action.phase, 1)
      }
      if (matchedBefore !== matchesNow) ancestor.matching += matchesNow ? 1 : -1
      touched.add(ancestor.action.key.name)
    }
    touched.add(action.key.name)
  }

  const entryOf = (node: Node, meets: boolean): TreeEntry => ({
    action: node.action,
    meetsFilter: meets,
    childrenPhaseCounts: new Map(node.counts)
  })

  /** The entries to send for the touched nodes, in order; marks what is shown. */
  const entriesFor = (names: Iterable<string>): ReadonlyArray<TreeEntry> => {
    const entries: Array<TreeEntry> = []
    for (const name of names) {
      const node = nodes.get(name)
      if (node === undefined) continue
      const visible = node.matching > 0 || meetsFilter(filter, node.action)
      if (visible) entries.push(entryOf(node, true))
      else if (node.shown) entries.push(entryOf(node, false))
      node.shown = visible
    }
    return entries
  }

  const place = (action: ActionRecord, touched: Set<string>) => {
    const name = action.key.name
    const node = nodes.get(name)
    if (node !== undefined) return update(node, action, touched)
    if (action.parent === undefined || nodes.has(action.parent)) return insert(action, touched)
    const held = orphans.get(action.parent) ?? new Map<string, ActionRecord>()
    orphans.set(action.parent, held.set(name, action))
  }

  return {
    /** Adds actions without sending anything (the snapshot); `snapshot` then says what to send. */
    load: (actions: ReadonlyArray<ActionRecord>): void => {
      const touched = new Set<string>()
      for (const action of actions) place(action, touched)
    },
    /** Every shown node, parents before children. */
    snapshot: (): ReadonlyArray<TreeEntry> => entriesFor(nodes.keys()),
    /** The entries to send after an action changed: its path from the root, and any held children it freed. */
    upsert: (action: ActionRecord): ReadonlyArray<TreeEntry> => {
      const touched = new Set<string>()
      place(action, touched)
      // Insertion order: each path from the root first, then the node, then the children it freed.
      return entriesFor(touched)
    }
  }
}
