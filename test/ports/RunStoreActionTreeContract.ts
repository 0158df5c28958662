import { expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { abortAction, abortAttempt } from "../../src/domain/Abort.js"
import { type ActionKey, actionKeyText } from "../../src/domain/Ids.js"
import { ActionPhase, ActionType } from "../../src/domain/Phase.js"
import { type AbortRecord, type ActionRecord, listedAction } from "../../src/domain/Records.js"
import { RunStore } from "../../src/ports/RunStore.js"
import type { Backend } from "../support/backends.js"
import {
  at,
  attempt,
  childAction,
  comparable,
  filter,
  fullOrder,
  listQuery,
  payload,
  runView
} from "../support/Fixtures.js"

/**
 * A run whose root `a0` has children c1 (RUNNING) -> c1a (QUEUED) -> c1ax (SUCCEEDED), c2 (SUCCEEDED) -> c2a
 * (QUEUED) and c3 (FAILED), created at(10) .. at(16); and a second run with one child.
 */
const tree = () => {
  const view = runView({ createdAt: at(10), phase: ActionPhase.RUNNING })
  const child = (name: string, parent: string, seconds: number, phase: ActionPhase) =>
    childAction(view, name, { parent, createdAt: at(seconds), phase })
  const children = [
    child("c1", "a0", 11, ActionPhase.RUNNING),
    child("c2", "a0", 12, ActionPhase.SUCCEEDED),
    child("c3", "a0", 13, ActionPhase.FAILED),
    child("c1a", "c1", 14, ActionPhase.QUEUED),
    child("c2a", "c2", 15, ActionPhase.QUEUED),
    child("c1ax", "c1a", 16, ActionPhase.SUCCEEDED)
  ]
  const other = runView({ createdAt: at(20) })
  return { view, children, other, otherChild: childAction(other, "x1", { createdAt: at(21) }) }
}

const names = (actions: ReadonlyArray<ActionRecord>) => actions.map((action) => action.key.name).join(",")

/** What the RunStore does with actions below the root: records, lists and aborts them. */
export const runStoreActionTreeContract = (backend: Backend<RunStore>): void => {
  const withTree = <A, E>(body: (
    store: RunStore["Type"],
    data: ReturnType<typeof tree>
  ) => Effect.Effect<A, E>) =>
    Effect.gen(function*() {
      const store = yield* RunStore
      const data = tree()
      yield* store.createRun({ view: data.view, task: undefined })
      yield* store.createRun({ view: data.other, task: undefined })
      for (const action of [...data.children, data.otherChild]) {
        expect(yield* store.recordAction(action)).toBe(true)
      }
      return yield* body(store, data)
    }).pipe(Effect.provide(backend.layer))

  it.effect("recordAction keeps an action already recorded; an unknown run is ActionMissing", () =>
    withTree((store, { children, view }) => Effect.gen(function*() {
      const c1 = children[0]!
      expect(yield* store.recordAction({ ...c1, phase: ActionPhase.FAILED, group: "changed" })).toBe(false)
      expect(yield* store.recordAction({ ...view.root, phase: ActionPhase.FAILED })).toBe(false)
      expect(comparable(Option.getOrThrow(yield* store.getAction(c1.key)))).toStrictEqual(comparable(c1))
      expect(comparable(Option.getOrThrow(yield* store.getRun(view.run.key)))).toStrictEqual(comparable(view))
      const orphan = childAction({ ...view.run.key, name: "nope" }, "c1")
      const error = yield* Effect.flip(store.recordAction(orphan))
      expect(error).toMatchObject({ _tag: "ActionMissing", key: orphan.key })
      expect(Option.isNone(yield* store.getAction(orphan.key))).toBe(true)
    })))

  it.effect("recordAction stores every field of an action; undefined fields stay undefined", () =>
    withTree((store, { view }) => Effect.gen(function*() {
      const full = childAction(view, "full", {
        type: ActionType.TRACE,
        phase: ActionPhase.SUCCEEDED,
        attempts: 2,
        cacheStatus: 4,
        triggerName: "t",
        createdBy: "erin",
        spec: { kind: "trace", payload: payload({ trace: { name: "f" } }) },
        metadata: payload({ m: 1 }),
        runOutputBase: "file:///out/",
        abort: { reason: "r", abortedBy: undefined },
        errorInfo: payload({ message: "x" }),
        startedAt: at(30),
        endedAt: at(31),
        createdAt: at(30),
        updatedAt: at(32)
      })
      const bare = childAction(view, "bare", {
        type: ActionType.CONDITION,
        group: undefined,
        task: undefined,
        taskType: undefined,
        shortName: undefined,
        functionName: undefined,
        environmentName: undefined,
        spec: undefined,
        inputUri: undefined
      })
      for (const action of [full, bare]) {
        expect(yield* store.recordAction(action)).toBe(true)
        expect(comparable(Option.getOrThrow(yield* store.getAction(action.key)))).toStrictEqual(comparable(action))
      }
    })))

  it.effect("listActions lists the root and every descendant of that run only, as stored", () =>
    withTree((store, { children, view }) => Effect.gen(function*() {
      const page = yield* store.listActions(view.run.key, listQuery())
      expect(comparable(page.items)).toStrictEqual(comparable([...children].reverse().concat([view.root]).map(listedAction)))
      expect(page.next).toBeUndefined()
      const read = yield* store.getAction(children[3]!.key)
      expect(comparable(Option.getOrThrow(read))).toStrictEqual(comparable(children[3]))
    })))

  it.effect("listActions filters, orders and pages like listRuns", () =>
    withTree((store, { view }) => Effect.gen(function*() {
      const list = (query: Parameters<typeof listQuery>[0]) =>
        Effect.map(store.listActions(view.run.key, listQuery(query)), (page) => names(page.items))
      expect(yield* list({ order: fullOrder([["name", "ASC"]]) })).toBe("a0,c1,c1a,c1ax,c2,c2a,c3")
      expect(yield* list({ order: fullOrder([["created_at", "ASC"]]) })).toBe("a0,c1,c2,c3,c1a,c2a,c1ax")
      expect(yield* list({ filters: [filter("parent_name", "EQUAL", "a0")] })).toBe("c3,c2,c1")
      expect(yield* list({ filters: [filter("parent_name", "EQUAL", "")] })).toBe("a0")
      expect(yield* list({ filters: [filter("parent_name", "ENDS_WITH", "a")] })).toBe("c1ax")
      expect(yield* list({ filters: [filter("phase", "VALUE_IN", ActionPhase.QUEUED, ActionPhase.RUNNING)] }))
        .toBe("c2a,c1a,c1,a0")
      expect(yield* list({ order: fullOrder([["phase", "DESC"]]) })).toBe("c3,c1ax,c2,c1,a0,c2a,c1a")
      const seen: Array<string> = []
      let query = listQuery({ limit: 3, order: fullOrder([["name", "DESC"]]) })
      for (;;) {
        const page = yield* store.listActions(view.run.key, query)
        seen.push(names(page.items))
        if (page.next === undefined) break
        query = { ...query, after: page.next }
      }
      expect(seen).toEqual(["c3,c2a,c2", "c1ax,c1a,c1", "a0"])
    })))

  const record: AbortRecord = { reason: "stop the tree", abortedBy: "dave" }

  it.effect("abort of the root aborts it and every non-terminal descendant; terminal ones are untouched", () =>
    withTree((store, { children, other, otherChild, view }) => Effect.gen(function*() {
      const byName = new Map([view.root, ...children].map((action) => [action.key.name, action]))
      const open = (name: string) => attempt(1, { start: byName.get(name)!.createdAt })
      const attempts = new Map<string, ReturnType<typeof attempt>>()
      for (const name of ["a0", "c1", "c1a", "c2a", "c1ax"]) {
        const made = name === "c1ax" ? attempt(1, { phase: ActionPhase.SUCCEEDED, start: at(16) }) : open(name)
        attempts.set(name, made)
        yield* store.putAttempts(byName.get(name)!.key, [made])
      }
      const now = at(100)
      const outcome = yield* store.abort(view.root.key, record, now)
      if (outcome._tag !== "Aborted") return expect.fail("expected Aborted")
      expect(outcome.aborted[0]).toEqual(view.root.key)
      const aborted = outcome.aborted.map((key: ActionKey) => key.name)
      expect([...aborted].sort()).toEqual(["a0", "c1", "c1a", "c2a"])
      for (const [name, action] of byName) {
        const read = Option.getOrThrow(yield* store.getAction(action.key))
        const expected = aborted.includes(name) ? abortAction(action, record, now) : action
        expect([name, comparable(read)]).toStrictEqual([name, comparable(expected)])
        const made = attempts.get(name)
        const expectedAttempts = made === undefined ? [] : [aborted.includes(name) ? abortAttempt(made, now) : made]
        expect([name, comparable(yield* store.listAttempts(action.key))])
          .toStrictEqual([name, comparable(expectedAttempts)])
      }
      expect(comparable(Option.getOrThrow(yield* store.getRun(other.run.key)))).toStrictEqual(comparable(other))
      expect(comparable(Option.getOrThrow(yield* store.getAction(otherChild.key)))).toStrictEqual(
        comparable(otherChild)
      )
    })))

  it.effect("abort of a child aborts its subtree only; a terminal child aborts nothing", () =>
    withTree((store, { children, view }) => Effect.gen(function*() {
      const [c1, c2] = children
      const outcome = yield* store.abort(c1!.key, record, at(100))
      if (outcome._tag !== "Aborted") return expect.fail("expected Aborted")
      expect(outcome.aborted.map((key) => actionKeyText(key))).toEqual(
        [c1!.key, children[3]!.key].map((key) => actionKeyText(key))
      )
      expect(yield* store.abort(c2!.key, record, at(100))).toEqual({ _tag: "Aborted", aborted: [] })
      const after = yield* store.listActions(view.run.key, listQuery({ order: fullOrder([["name", "ASC"]]) }))
      expect(after.items.map((action) => `${action.key.name}:${action.phase}`)).toEqual([
        "a0:4", "c1:7", "c1a:7", "c1ax:5", "c2:5", "c2a:1", "c3:6"
      ])
    })))
}
