import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { runKeyText } from "../../src/domain/Ids.js"
import type {
  FieldValue,
  ListField,
  ListFilter,
  ListQuery,
  Page,
  RunScope,
  SortDirection,
  SortKey
} from "../../src/domain/ListQuery.js"
import { ActionPhase, RunSource } from "../../src/domain/Phase.js"
import { listedAction, listedView, type RunView } from "../../src/domain/Records.js"
import { RunStore } from "../../src/ports/RunStore.js"
import type { Backend } from "../support/backends.js"
import { at, comparable, filter, fullOrder, listQuery, runView, taskRef } from "../support/Fixtures.js"

const ms = (date: Date, plus = 0) => date.getTime() + plus

/**
 * Six runs, created a..f at(1)..at(6). `e` shares `a`'s name in another project; `d` has no task, creator,
 * function or environment; text values mix case and carry LIKE's wildcards.
 */
const dataset = (): Record<string, RunView> => {
  const task = (name: string, version = "v1", domain = "development") => taskRef({ name, version, domain })
  return {
    a: runView({ key: { name: "run-a" }, createdAt: at(1), task: task("my.task"), createdBy: "alice",
      environmentName: "env_1", functionName: "main" }),
    b: runView({ key: { name: "run-b" }, createdAt: at(2), phase: ActionPhase.RUNNING, task: task("my.task", "v2"),
      createdBy: "Bob", environmentName: "env%2", functionName: "main_fn", source: RunSource.WEB }),
    c: runView({ key: { name: "run-c" }, createdAt: at(3), phase: ActionPhase.SUCCEEDED, endedAt: new Date(ms(at(3), 1500)),
      task: task("other.task"), createdBy: "carol", environmentName: "envx", functionName: "Mainfn" }),
    d: runView({ key: { name: "run-d" }, createdAt: at(4), phase: ActionPhase.FAILED, endedAt: new Date(ms(at(4), 4000)),
      task: undefined, createdBy: undefined, environmentName: undefined, functionName: undefined,
      triggerName: "nightly", source: RunSource.SCHEDULE_TRIGGER }),
    e: runView({ key: { project: "other", name: "run-a" }, createdAt: at(5), task: task("my.task"), createdBy: "alice",
      environmentName: "env_1", functionName: "main" }),
    f: runView({ key: { domain: "staging", name: "run-f" }, createdAt: at(6), phase: ActionPhase.ABORTED,
      endedAt: new Date(ms(at(6), 500)), task: task("my.task", "v1", "staging"), createdBy: "ALICE",
      environmentName: "env", functionName: "main" })
  }
}

type Order = ReadonlyArray<readonly [ListField, SortDirection]>

/** The RunStore's lists: scopes, every filter function on every kind of field, orders and keyset pages. */
export const runStoreListContract = (backend: Backend<RunStore>): void => {
  const withDataset = <A, E>(body: (
    store: RunStore["Type"],
    labels: (views: ReadonlyArray<RunView>) => string
  ) => Effect.Effect<A, E>) =>
    Effect.gen(function*() {
      const store = yield* RunStore
      const views = dataset()
      for (const view of Object.values(views)) yield* store.createRun({ view, task: undefined })
      const byKey = new Map(Object.entries(views).map(([label, view]) => [runKeyText(view.run.key), label]))
      return yield* body(store, (list) => list.map((view) => byKey.get(runKeyText(view.run.key)) ?? "?").join(""))
    }).pipe(Effect.provide(backend.layer))

  const all: RunScope = { kind: "all" }
  const list = (store: RunStore["Type"], query: Partial<ListQuery>, scope: RunScope = all) =>
    Effect.map(store.listRuns(scope, listQuery(query)), (page) => page.items)

  it.effect("lists the runs of every scope, newest first, with the view as stored", () =>
    withDataset((store, labels) => Effect.gen(function*() {
      const scopes: ReadonlyArray<readonly [RunScope, string]> = [
        [all, "fedcba"],
        [{ kind: "project", project: "proj", domain: "development" }, "dcba"],
        [{ kind: "project", project: "other", domain: "development" }, "e"],
        [{ kind: "project", project: "proj", domain: "nope" }, ""],
        [{ kind: "taskName", project: "proj", domain: "development", name: "my.task" }, "eba"],
        [{ kind: "taskName", project: "proj", domain: "staging", name: "my.task" }, "f"],
        [{ kind: "taskId", project: "proj", domain: "development", name: "my.task", version: "v1" }, "ea"],
        [{ kind: "taskId", project: "proj", domain: "development", name: "my.task", version: "v3" }, ""]
      ]
      for (const [scope, expected] of scopes) {
        expect([scope, labels(yield* list(store, {}, scope))]).toEqual([scope, expected])
      }
      const [first] = yield* list(store, { limit: 1 })
      expect(comparable(first)).toStrictEqual(comparable(listedView(dataset()["f"]!)))
      // Lists leave the specs out; the run and its root as read one by one still have them.
      expect(first?.root.spec).toBeUndefined()
      expect(first?.run.runSpec.binary).toHaveLength(0)
      expect(dataset()["f"]!.root.spec).toBeDefined()
    })))

  const c3 = ms(at(3))
  const filterCases: ReadonlyArray<readonly [ListFilter | ReadonlyArray<ListFilter>, string]> = [
    [filter("project", "EQUAL", "proj"), "fdcba"],
    [filter("project", "NOT_EQUAL", "proj"), "e"],
    [filter("project", "VALUE_IN", "other", "proj"), "fedcba"],
    [filter("domain", "EQUAL", "staging"), "f"],
    [filter("run_name", "VALUE_IN", "run-a", "run-c"), "eca"],
    [filter("run_name", "VALUE_IN", "run-c"), "c"],
    [filter("name", "EQUAL", "a0"), "fedcba"],
    [filter("created_by", "EQUAL", "alice"), "ea"],
    [filter("created_by", "NOT_EQUAL", "alice"), "fdcb"],
    [filter("created_by", "CONTAINS", "li"), "ea"],
    [filter("created_by", "CONTAINS_CASE_INSENSITIVE", "LIC"), "fea"],
    [filter("created_by", "GREATER_THAN", "alice"), "c"],
    [filter("created_by", "LESS_THAN", "alice"), "fdb"],
    [filter("created_by", "LESS_THAN_OR_EQUAL", "Bob"), "fdb"],
    [filter("created_by", "GREATER_THAN_OR_EQUAL", "Bob"), "ecba"],
    [filter("task_name", "EQUAL", ""), "d"],
    [filter("task_name", "NOT_EQUAL", "my.task"), "dc"],
    [filter("task_name", "ENDS_WITH", ".task"), "fecba"],
    [filter("task_name", "NOT_ENDS_WITH", "my.task"), "dc"],
    [filter("task_project", "EQUAL", "proj"), "fecba"],
    [filter("task_domain", "EQUAL", "staging"), "f"],
    [filter("task_version", "EQUAL", "v2"), "b"],
    [filter("environment_name", "CONTAINS", "_"), "ea"],
    [filter("environment_name", "CONTAINS", "%"), "b"],
    [filter("environment_name", "CONTAINS_CASE_INSENSITIVE", "%2"), "b"],
    [filter("function_name", "ENDS_WITH", "_fn"), "b"],
    [filter("function_name", "NOT_ENDS_WITH", "_fn"), "fedca"],
    [filter("function_name", "CONTAINS_CASE_INSENSITIVE", "MAIN"), "fecba"],
    [filter("trigger_name", "EQUAL", "nightly"), "d"],
    [filter("trigger_name", "VALUE_IN", "weekly", "nightly"), "d"],
    [filter("phase", "EQUAL", ActionPhase.QUEUED), "ea"],
    [filter("phase", "NOT_EQUAL", ActionPhase.QUEUED), "fdcb"],
    [filter("phase", "GREATER_THAN", ActionPhase.RUNNING), "fdc"],
    [filter("phase", "GREATER_THAN_OR_EQUAL", ActionPhase.RUNNING), "fdcb"],
    [filter("phase", "LESS_THAN", ActionPhase.RUNNING), "ea"],
    [filter("phase", "LESS_THAN_OR_EQUAL", ActionPhase.SUCCEEDED), "ecba"],
    [filter("phase", "VALUE_IN", ActionPhase.SUCCEEDED, ActionPhase.ABORTED), "fc"],
    [filter("action_type", "EQUAL", 1), "fedcba"],
    [filter("run_source", "EQUAL", RunSource.SCHEDULE_TRIGGER), "d"],
    [filter("run_source", "VALUE_IN", RunSource.WEB, RunSource.SCHEDULE_TRIGGER), "db"],
    [filter("duration_ms", "EQUAL", 1500), "c"],
    [filter("duration_ms", "GREATER_THAN", 1000), "dc"],
    [filter("duration_ms", "LESS_THAN", 1000), "feba"],
    [filter("duration_ms", "LESS_THAN_OR_EQUAL", 1500), "fecba"],
    [filter("duration_ms", "GREATER_THAN_OR_EQUAL", 500), "fdc"],
    [filter("created_at", "EQUAL", c3), "c"],
    [filter("created_at", "NOT_EQUAL", c3), "fedba"],
    [filter("created_at", "GREATER_THAN", c3), "fed"],
    [filter("created_at", "GREATER_THAN_OR_EQUAL", c3), "fedc"],
    [filter("created_at", "LESS_THAN", c3), "ba"],
    [filter("created_at", "LESS_THAN_OR_EQUAL", c3), "cba"],
    [filter("created_at", "VALUE_IN", ms(at(1)), ms(at(6))), "fa"],
    [filter("ended_at", "GREATER_THAN", c3), "fdc"],
    [filter("ended_at", "LESS_THAN", ms(at(5))), "ecba"],
    [filter("ended_at", "EQUAL", ms(at(4), 4000)), "d"],
    [filter("updated_at", "GREATER_THAN", ms(at(5))), "fd"],
    [[filter("project", "EQUAL", "proj"), filter("phase", "LESS_THAN", ActionPhase.SUCCEEDED)], "ba"],
    [[filter("created_by", "EQUAL", "alice"), filter("project", "EQUAL", "nope")], ""]
  ]

  it.effect("filters with every function on text, number and time fields; a missing value reads as '' or -1", () =>
    withDataset((store, labels) => Effect.gen(function*() {
      for (const [given, expected] of filterCases) {
        const filters = Array.isArray(given) ? given : [given]
        expect([filters, labels(yield* list(store, { filters }))]).toEqual([filters, expected])
      }
    })))

  const sortKeys = (...keys: Order): ReadonlyArray<SortKey> => keys.map(([field, direction]) => ({ field, direction }))
  const orderCases: ReadonlyArray<readonly [ReadonlyArray<SortKey>, string]> = [
    [fullOrder(), "fedcba"],
    [fullOrder([["created_at", "ASC"]]), "abcdef"],
    [fullOrder([["phase", "ASC"]]), "aebcdf"],
    [fullOrder([["phase", "DESC"]]), "fdcbea"],
    [
      sortKeys(["phase", "ASC"], ["created_at", "DESC"], ["project", "DESC"], ["domain", "DESC"], ["run_name", "DESC"],
        ["name", "DESC"]),
      "eabcdf"
    ],
    [fullOrder([["created_by", "ASC"]]), "dfbaec"],
    [fullOrder([["created_by", "DESC"]]), "ceabfd"],
    [fullOrder([["task_name", "ASC"]]), "dabefc"],
    [fullOrder([["duration_ms", "DESC"]]), "dcfeba"],
    [fullOrder([["ended_at", "ASC"]]), "abecfd"],
    [fullOrder([["run_name", "ASC"]]), "aebcdf"],
    [fullOrder([["run_name", "DESC"], ["project", "ASC"]]), "fdcbea"],
    [fullOrder([["function_name", "ASC"]]), "dcaefb"],
    [fullOrder([["environment_name", "DESC"]]), "ceabfd"]
  ]

  it.effect("orders by any field in either direction, ties broken by created_at and the unique key", () =>
    withDataset((store, labels) => Effect.gen(function*() {
      for (const [order, expected] of orderCases) {
        expect([order, labels(yield* list(store, { order }))]).toEqual([order, expected])
      }
    })))

  it.effect("limit: at most that many, and a next cursor only when more rows exist", () =>
    withDataset((store, labels) => Effect.gen(function*() {
      const page = (limit: number) => store.listRuns(all, listQuery({ limit }))
      const two = yield* page(2)
      expect(labels(two.items)).toBe("fe")
      expect(two.next).toEqual([ms(at(5)), "other", "development", "run-a", "a0"])
      for (const limit of [6, 7, 200]) {
        const whole = yield* page(limit)
        expect([limit, labels(whole.items), whole.next]).toEqual([limit, "fedcba", undefined])
      }
      const filtered = yield* store.listRuns(all, listQuery({ limit: 2, filters: [filter("phase", "EQUAL", 1)] }))
      expect([labels(filtered.items), filtered.next]).toEqual(["ea", undefined])
    })))

  const walk = (store: RunStore["Type"], query: ListQuery, between: Effect.Effect<unknown, unknown> = Effect.void) =>
    Effect.gen(function*() {
      const pages: Array<ReadonlyArray<RunView>> = []
      let after: ReadonlyArray<FieldValue> | undefined = undefined
      do {
        const page: Page<RunView> = yield* store.listRuns(all, { ...query, after })
        expect(page.items.length).toBeLessThanOrEqual(query.limit)
        pages.push(page.items)
        after = page.next
        yield* between
      } while (after !== undefined && pages.length < 100)
      return pages
    })

  const ties = () => [
    runView({ key: { name: "run-g" }, createdAt: at(3), phase: ActionPhase.SUCCEEDED }),
    runView({ key: { project: "aaa", name: "run-g" }, createdAt: at(3), phase: ActionPhase.SUCCEEDED }),
    runView({ key: { domain: "aaa", name: "run-c" }, createdAt: at(3), phase: ActionPhase.SUCCEEDED })
  ]

  it.effect("keyset pages of 1 to 3 rows, in any order, with ties, walk the full list: no repeats, no skips", () =>
    withDataset((store, labels) => Effect.gen(function*() {
      for (const view of ties()) yield* store.createRun({ view, task: undefined })
      const orders: ReadonlyArray<Order> = [
        [], [["created_at", "ASC"]], [["phase", "ASC"]], [["phase", "DESC"], ["created_by", "ASC"]],
        [["created_by", "ASC"]], [["task_name", "DESC"]], [["duration_ms", "DESC"]], [["ended_at", "ASC"]],
        [["run_name", "ASC"]], [["phase", "ASC"], ["created_at", "DESC"]]
      ]
      for (const keys of orders) {
        for (const filters of [[], [filter("phase", "NOT_EQUAL", ActionPhase.ABORTED)]]) {
          const order = fullOrder(keys)
          const full = yield* list(store, { order, filters, limit: 200 })
          expect(full.length).toBe(filters.length === 0 ? 9 : 8)
          for (const limit of [1, 2, 3]) {
            const pages = yield* walk(store, listQuery({ order, filters, limit }))
            expect(pages.length).toBe(Math.ceil(full.length / limit))
            expect([keys, limit, pages.flat().map((view) => runKeyText(view.run.key))])
              .toEqual([keys, limit, full.map((view) => runKeyText(view.run.key))])
          }
        }
      }
      expect(labels(yield* list(store, { order: fullOrder([["created_at", "ASC"]]) }))).toBe("ab??c?def")
    })))

  it.effect("rows inserted between pages never make a page repeat or skip a row that existed before", () =>
    withDataset((store) => Effect.gen(function*() {
      for (const direction of ["DESC", "ASC"] as const) {
        const order = fullOrder([["created_at", direction]])
        const before = (yield* list(store, { order, limit: 200 })).map((view) => runKeyText(view.run.key))
        let n = 0
        const insert = Effect.suspend(() => {
          n += 1
          return Effect.forEach([at(-n), at(3), at(100 + n)], (createdAt) =>
            store.createRun({ view: runView({ createdAt }), task: undefined }))
        })
        const pages = yield* walk(store, listQuery({ order, limit: 2 }), insert)
        const seen = pages.flat().map((view) => runKeyText(view.run.key))
        expect(new Set(seen).size).toBe(seen.length)
        expect(seen.filter((key) => before.includes(key))).toEqual(before)
      }
    })))

  it.effect("listActions of a run with only its root lists the root; an unknown run lists nothing", () =>
    withDataset((store) => Effect.gen(function*() {
      const views = dataset()
      const a = views["a"]!
      const page = yield* store.listActions(a.run.key, listQuery())
      expect(comparable(page)).toStrictEqual(comparable({ items: [listedAction(a.root)], next: undefined }))
      const none = yield* store.listActions({ ...a.run.key, name: "nope" }, listQuery())
      expect(none).toEqual({ items: [], next: undefined })
    })))
}
