import { expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { abortAction, abortAttempt } from "../../src/domain/Abort.js"
import { Fingerprint } from "../../src/domain/Payload.js"
import { ActionPhase, ActionType, RunSource } from "../../src/domain/Phase.js"
import type { AbortRecord, RunView } from "../../src/domain/Records.js"
import { RunStore } from "../../src/ports/RunStore.js"
import type { Backend } from "../support/backends.js"
import {
  actionKey,
  at,
  attempt,
  comparable,
  payload,
  runView,
  taskRecord,
  taskRef
} from "../support/Fixtures.js"
import { runStoreActionTreeContract } from "./RunStoreActionTreeContract.js"
import { runStoreBatchContract } from "./RunStoreBatchContract.js"
import { runStoreIngestionContract } from "./RunStoreIngestionContract.js"
import { runStoreListContract } from "./RunStoreListContract.js"
import { runStoreRetentionContract } from "./RunStoreRetentionContract.js"

const later = (date: Date, ms: number) => new Date(date.getTime() + ms)

/** A view with every optional field set, in both the run and its root. */
const fullView = (): RunView =>
  runView({
    org: "acme",
    createdAt: at(10),
    phase: ActionPhase.RUNNING,
    task: taskRef({ org: "acme", name: "full.task", version: "v7" }),
    createdBy: "alice@example.com",
    triggerName: "nightly",
    trigger: { org: "acme", project: "proj", domain: "development", name: "nightly" },
    source: RunSource.SCHEDULE_TRIGGER,
    functionName: "train",
    environmentName: "gpu-env",
    endedAt: undefined,
    requestId: "req-full",
    run: {
      createdByServiceAccount: "system:serviceaccount:flyte:runner",
      cluster: "cluster-east",
      fingerprint: Fingerprint("ab".repeat(32)),
      runSpec: payload({ labels: { "k é": "v\u2603" }, envs: { values: [{ key: "A", value: "1" }] }, n: 1.5 }),
      updatedAt: at(11)
    },
    root: {
      attempts: 3,
      cacheStatus: 2,
      group: "grp",
      taskType: "container",
      shortName: "full",
      metadata: payload({ condition: { prompt: "ok?" } }),
      errorInfo: payload({ message: "earlier failure", kind: "USER" }),
      abort: { reason: "not really", abortedBy: "bob" },
      startedAt: at(9),
      endedAt: at(12),
      updatedAt: at(12)
    }
  })

/** A view with every optional field undefined. */
const bareView = (): RunView =>
  runView({
    task: undefined,
    createdBy: undefined,
    functionName: undefined,
    environmentName: undefined,
    source: RunSource.UNSPECIFIED,
    root: { type: ActionType.TRACE, inputUri: undefined, runOutputBase: undefined, spec: undefined }
  })

/** The RunStore port's semantics, on one backend; lists, action trees and ingestion are in sibling files. */
export const runStoreContract = (backend: Backend<RunStore>): void => {
  const provided = <A, E>(effect: Effect.Effect<A, E, RunStore>) => Effect.provide(effect, backend.layer)

  it.effect("createRun returns the view and getRun reads every field back, to the millisecond", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      for (const view of [fullView(), bareView()]) {
        const created = yield* store.createRun({ view, task: undefined })
        expect(comparable(created)).toStrictEqual(comparable(view))
        const read = yield* store.getRun(view.run.key)
        expect(comparable(Option.getOrThrow(read))).toStrictEqual(comparable(view))
        const root = yield* store.getAction(view.root.key)
        expect(comparable(Option.getOrThrow(root))).toStrictEqual(comparable(view.root))
      }
    })))

  it.effect("getRuns reads the runs of the keys that exist, each once, as getRun does; none for no keys", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const views = [fullView(), bareView(), runView()]
      for (const view of views) yield* store.createRun({ view, task: undefined })
      const missing = runView().run.key
      const keys = [views[2]!.run.key, missing, views[0]!.run.key, views[1]!.run.key, views[0]!.run.key]
      const read = yield* store.getRuns(keys)
      const byName = (list: ReadonlyArray<RunView>) =>
        [...list].sort((a, b) => a.run.key.name.localeCompare(b.run.key.name)).map(comparable)
      expect(byName(read)).toStrictEqual(byName(views))
      expect(yield* store.getRuns([missing])).toEqual([])
      expect(yield* store.getRuns([])).toEqual([])
      // More keys than one statement takes: read in parts, all of them found.
      const many = Array.from({ length: 450 }, () => runView())
      yield* Effect.forEach(many, (view) => store.createRun({ view, task: undefined }), { discard: true })
      expect((yield* store.getRuns(many.map((view) => view.run.key))).length).toBe(450)
    })))

  it.effect("payload bytes come back byte for byte, as a Uint8Array", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const bytes = Uint8Array.from({ length: 256 }, (_, i) => i)
      const view = runView({ run: { runSpec: { binary: bytes, json: "{}" } } })
      yield* store.createRun({ view, task: undefined })
      const read = Option.getOrThrow(yield* store.getRun(view.run.key))
      expect(read.run.runSpec.binary).toBeInstanceOf(Uint8Array)
      expect(Array.from(read.run.runSpec.binary)).toEqual(Array.from(bytes))
    })))

  it.effect("the same (project, domain, name) is RunExists carrying the stored run, even with another org", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const first = runView({ org: "one" })
      const task = taskRecord({ view: first })
      yield* store.createRun({ view: first, task: undefined })
      const second = runView({
        key: first.run.key,
        org: "two",
        phase: ActionPhase.RUNNING,
        task: taskRef({ name: "second.task" })
      })
      const error = yield* Effect.flip(
        store.createRun({ view: second, task: { ...task, key: { ...task.key, name: "second.task" } } })
      )
      if (error._tag !== "RunExists") return expect.fail(`expected RunExists, got ${error._tag}`)
      expect(comparable(error.existing)).toStrictEqual(comparable(first))
      expect(comparable(Option.getOrThrow(yield* store.getRun(first.run.key)))).toStrictEqual(comparable(first))
      expect(Option.isNone(yield* store.getTask({ ...task.key, name: "second.task" }))).toBe(true)
    })))

  it.effect("beforeCommit runs once the run is new; when it fails nothing is written and its error comes back", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const view = runView()
      const task = taskRecord({ view })
      const failed = yield* Effect.flip(
        store.createRun({ view, task, beforeCommit: Effect.fail({ _tag: "Refused" as const }) })
      )
      expect(failed).toEqual({ _tag: "Refused" })
      expect(Option.isNone(yield* store.getRun(view.run.key))).toBe(true)
      expect(Option.isNone(yield* store.getTask(task.key))).toBe(true)

      let ran = 0
      const created = yield* store.createRun({ view, task, beforeCommit: Effect.sync(() => void ran++) })
      expect(ran).toBe(1)
      expect(comparable(created)).toStrictEqual(comparable(view))
      expect(Option.isSome(yield* store.getTask(task.key))).toBe(true)
    })))

  it.effect("beforeCommit does not run when the name is taken", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const view = runView()
      yield* store.createRun({ view, task: undefined })
      let ran = 0
      const error = yield* Effect.flip(store.createRun({ view, task: undefined, beforeCommit: Effect.sync(() => void ran++) }))
      expect(error._tag).toBe("RunExists")
      expect(ran).toBe(0)
    })))

  it.effect("the same name in another project or domain is another run", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const first = runView()
      const otherProject = runView({ key: { ...first.run.key, project: "proj2" } })
      const otherDomain = runView({ key: { ...first.run.key, domain: "production" } })
      for (const view of [first, otherProject, otherDomain]) yield* store.createRun({ view, task: undefined })
      for (const view of [first, otherProject, otherDomain]) {
        const read = Option.getOrThrow(yield* store.getRun(view.run.key))
        expect(read.run.createdAt.getTime()).toBe(view.run.createdAt.getTime())
      }
    })))

  it.effect("a task is stored once: the first spec recorded under its key wins", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const first = runView()
      const task = taskRecord({ view: first, org: "acme" })
      yield* store.createRun({ view: first, task })
      const second = runView()
      const again = taskRecord({ view: second, createdAt: at(999) })
      expect(again.spec.json).not.toBe(task.spec.json)
      yield* store.createRun({ view: second, task: again })
      expect(comparable(Option.getOrThrow(yield* store.getTask(task.key)))).toStrictEqual(comparable(task))
      expect(Option.isNone(yield* store.getTask({ ...task.key, version: "other" }))).toBe(true)
      expect(Option.isSome(yield* store.getRun(second.run.key))).toBe(true)
    })))

  it.effect("unknown runs, actions and tasks are Option.none", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const view = runView()
      yield* store.createRun({ view, task: undefined })
      expect(Option.isNone(yield* store.getRun({ ...view.run.key, name: "nope" }))).toBe(true)
      expect(Option.isNone(yield* store.getRun({ ...view.run.key, domain: "nope" }))).toBe(true)
      expect(Option.isNone(yield* store.getAction(actionKey(view, "a1")))).toBe(true)
      expect(Option.isNone(yield* store.getAction({ run: { ...view.run.key, name: "nope" }, name: "a0" }))).toBe(true)
      expect(Option.isNone(yield* store.getTask({ project: "p", domain: "d", name: "n", version: "v" }))).toBe(true)
    })))

  it.effect("findRunByRequestId: the newest run with that id created at or after `since`", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const older = runView({ requestId: "req-x", createdAt: at(10) })
      const newer = runView({ requestId: "req-x", createdAt: at(20) })
      const other = runView({ requestId: "req-y", createdAt: at(30) })
      const none = runView({ createdAt: at(40) })
      for (const view of [newer, older, other, none]) yield* store.createRun({ view, task: undefined })
      const find = (id: string, since: Date) =>
        Effect.map(store.findRunByRequestId(id, since), (found) => Option.map(found, (view) => view.run.key.name))
      expect(yield* find("req-x", at(0))).toEqual(Option.some(newer.run.key.name))
      expect(yield* find("req-x", at(20))).toEqual(Option.some(newer.run.key.name))
      expect(yield* find("req-x", later(at(20), 1))).toEqual(Option.none())
      expect(yield* find("req-y", at(30))).toEqual(Option.some(other.run.key.name))
      expect(yield* find("req-z", at(0))).toEqual(Option.none())
      const found = Option.getOrThrow(yield* store.findRunByRequestId("req-x", at(0)))
      expect(comparable(found)).toStrictEqual(comparable(newer))
    })))

  it.effect("attempts: none at first, listed by number with transitions and cluster events in order", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const view = runView()
      const key = view.root.key
      yield* store.createRun({ view, task: undefined })
      expect(yield* store.listAttempts(key)).toEqual([])
      const one = attempt(1, { phase: ActionPhase.FAILED })
      const two = attempt(2)
      const three = attempt(3, {
        phase: ActionPhase.QUEUED,
        startTime: undefined,
        endTime: undefined,
        logInfo: [],
        logContext: undefined,
        cluster: undefined,
        logsAvailable: false,
        phaseTransitions: [],
        clusterEvents: []
      })
      yield* store.putAttempts(key, [three, one, two])
      expect(comparable(yield* store.listAttempts(key))).toStrictEqual(comparable([one, two, three]))
    })))

  it.effect("attempts read back as written: any text in events, an empty payload, no transitions or events", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const view = runView()
      const key = view.root.key
      yield* store.createRun({ view, task: undefined })
      const message = "quote \" backslash \\ newline \n tab \t unicode é 漢字 🚀 </script> \u2028"
      const written = [
        attempt(1, {
          phase: ActionPhase.FAILED,
          errorInfo: { binary: new Uint8Array(), json: "{}" },
          clusterEvents: [{ occurredAt: at(150), message }, { occurredAt: at(150), message: "" }]
        }),
        attempt(2, { outputs: undefined, logInfo: [], phaseTransitions: [], clusterEvents: [] })
      ]
      yield* store.putAttempts(key, written)
      expect(comparable(yield* store.listAttempts(key))).toStrictEqual(comparable(written))
      const details = yield* store.getActionDetails(key)
      expect(comparable(Option.map(details, (found) => found.attempts))).toStrictEqual(comparable(Option.some(written)))
    })))

  it.effect("putAttempts replaces the given attempt numbers and keeps the others", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const view = runView()
      const otherRun = runView()
      const key = view.root.key
      for (const v of [view, otherRun]) yield* store.createRun({ view: v, task: undefined })
      const one = attempt(1)
      const two = attempt(2)
      yield* store.putAttempts(key, [one, two])
      yield* store.putAttempts(otherRun.root.key, [attempt(1, { cluster: "elsewhere" })])
      const replaced = attempt(2, {
        phase: ActionPhase.SUCCEEDED,
        cacheStatus: 3,
        clusterEvents: [{ occurredAt: at(500), message: "only one" }]
      })
      yield* store.putAttempts(key, [replaced])
      yield* store.putAttempts(key, [])
      expect(comparable(yield* store.listAttempts(key))).toStrictEqual(comparable([one, replaced]))
      const others = yield* store.listAttempts(otherRun.root.key)
      expect(others.map((a) => a.cluster)).toEqual(["elsewhere"])
    })))

  it.effect("putAttempts on an unknown action or run is ActionMissing naming it", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const view = runView()
      yield* store.createRun({ view, task: undefined })
      for (const key of [actionKey(view, "a9"), { run: { ...view.run.key, name: "nope" }, name: "a0" }]) {
        const error = yield* Effect.flip(store.putAttempts(key, [attempt(1)]))
        expect(error).toMatchObject({ _tag: "ActionMissing", key })
        expect(yield* store.listAttempts(key)).toEqual([])
      }
    })))

  const reason: AbortRecord = { reason: "stop it", abortedBy: "carol" }

  it.effect("abort of a run's root: ABORTED with the record and end time, the latest open attempt closed", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const view = runView({ createdAt: at(10), phase: ActionPhase.RUNNING })
      const key = view.root.key
      yield* store.createRun({ view, task: undefined })
      const one = attempt(1, { phase: ActionPhase.FAILED, start: at(10) })
      const two = attempt(2, { start: at(50) })
      yield* store.putAttempts(key, [one, two])
      const now = at(100)
      const outcome = yield* store.abort(key, reason, now)
      expect(outcome).toEqual({ _tag: "Aborted", aborted: [key] })
      const expected = abortAction(view.root, reason, now)
      expect(comparable(Option.getOrThrow(yield* store.getAction(key)))).toStrictEqual(comparable(expected))
      expect(comparable(Option.getOrThrow(yield* store.getRun(view.run.key)).root)).toStrictEqual(
        comparable(expected)
      )
      expect(comparable(yield* store.listAttempts(key))).toStrictEqual(comparable([one, abortAttempt(two, now)]))
    })))

  it.effect("abort: no end time before the start, no attempt invented, abortedBy may be absent", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const view = runView({ createdAt: at(10) })
      yield* store.createRun({ view, task: undefined })
      const record: AbortRecord = { reason: "User requested abort", abortedBy: undefined }
      yield* store.abort(view.root.key, record, at(5))
      const read = Option.getOrThrow(yield* store.getAction(view.root.key))
      expect(comparable(read)).toStrictEqual(comparable(abortAction(view.root, record, at(5))))
      expect(read.endedAt?.getTime()).toBe(at(10).getTime())
      expect(yield* store.listAttempts(view.root.key)).toEqual([])
    })))

  it.effect("abort of a terminal target changes nothing and aborts nothing", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      for (const phase of [ActionPhase.SUCCEEDED, ActionPhase.FAILED, ActionPhase.ABORTED, ActionPhase.TIMED_OUT]) {
        const view = runView({ phase })
        yield* store.createRun({ view, task: undefined })
        const attempts = [attempt(1, { phase })]
        yield* store.putAttempts(view.root.key, attempts)
        expect(yield* store.abort(view.root.key, reason, at(1000))).toEqual({ _tag: "Aborted", aborted: [] })
        expect(comparable(Option.getOrThrow(yield* store.getRun(view.run.key)))).toStrictEqual(comparable(view))
        expect(comparable(yield* store.listAttempts(view.root.key))).toStrictEqual(comparable(attempts))
      }
    })))

  it.effect("abort of an unknown action or run is TargetMissing", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const view = runView()
      yield* store.createRun({ view, task: undefined })
      expect(yield* store.abort(actionKey(view, "a7"), reason, at(100))).toEqual({ _tag: "TargetMissing" })
      expect(yield* store.abort({ run: { ...view.run.key, name: "nope" }, name: "a0" }, reason, at(100)))
        .toEqual({ _tag: "TargetMissing" })
      expect(comparable(Option.getOrThrow(yield* store.getRun(view.run.key)))).toStrictEqual(comparable(view))
    })))

  runStoreListContract(backend)
  runStoreActionTreeContract(backend)
  runStoreIngestionContract(backend)
  runStoreBatchContract(backend)
  runStoreRetentionContract(backend)
}
