import { expect, it } from "@effect/vitest"
import { Context, Deferred, Effect, Fiber, Option } from "effect"
import { ActionPhase } from "../../src/domain/Phase.js"
import { RunStore } from "../../src/ports/RunStore.js"
import type { Backend } from "../support/backends.js"
import { submit } from "../support/Fibers.js"
import {
  actionKey,
  at,
  attempt,
  childAction,
  comparable,
  runView,
  storedEvent,
  taskRecord,
  taskRef
} from "../support/Fixtures.js"

/**
 * Writes that arrive together (a store may commit them in one transaction, as the SQL store does): each is
 * answered only once committed, fails or succeeds on its own, and two writes of one action apply in arrival order.
 * Each test holds a write in `beforeCommit` while the others arrive, so that they arrive together.
 */
export const runStoreBatchContract = (backend: Backend<RunStore>): void => {
  const provided = <A, E>(effect: Effect.Effect<A, E, RunStore>) => Effect.provide(effect, backend.layer)

  /** A createRun held in its `beforeCommit` until `release` completes; started once it is held. */
  const holding = (store: RunStore["Type"]) =>
    Effect.gen(function*() {
      const held = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const view = runView()
      const fiber = yield* Effect.fork(store.createRun({
        view,
        task: undefined,
        beforeCommit: Effect.zipRight(Deferred.succeed(held, undefined), Deferred.await(release))
      }))
      yield* Deferred.await(held)
      return { view, fiber, release: Deferred.succeed(release, undefined) }
    })

  it.effect("writes that arrive together each succeed or fail on their own; the failed ones leave nothing", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const taken = runView()
      const parent = runView({ phase: ActionPhase.RUNNING })
      const child = childAction(parent, "c1")
      for (const view of [taken, parent]) yield* store.createRun({ view, task: undefined })
      yield* store.recordAction(child)

      const first = runView()
      const refused = runView({ task: taskRef({ name: "refused.task" }) })
      const refusedTask = taskRecord({ view: refused })
      const second = runView({ task: taskRef({ name: "second.task" }) })
      const secondTask = taskRecord({ view: second })
      const orphan = childAction(runView(), "c1")
      const sibling = childAction(parent, "c2")
      const hold = yield* holding(store)
      const good1 = yield* submit(store.createRun({ view: first, task: undefined }))
      const nameTaken = yield* submit(Effect.flip(store.createRun({ view: runView({ key: taken.run.key }), task: undefined })))
      const unknownRun = yield* submit(Effect.flip(store.recordAction(orphan)))
      const hookFails = yield* submit(Effect.flip(store.createRun({
        view: refused,
        task: refusedTask,
        beforeCommit: Effect.fail({ _tag: "Refused" as const })
      })))
      const ruleRefuses = yield* submit(store.updateAction(child.key, () => undefined))
      const recorded = yield* submit(store.recordAction(sibling))
      const unknownAction = yield* submit(Effect.flip(store.putAttempts(actionKey(parent, "c9"), [attempt(1)])))
      const updated = yield* submit(store.updateAction(child.key, (current) => ({ ...current, phase: ActionPhase.RUNNING })))
      const good2 = yield* submit(store.createRun({ view: second, task: secondTask }))
      yield* hold.release

      yield* Fiber.join(hold.fiber)
      expect((yield* Fiber.join(good1)).run.key).toStrictEqual(first.run.key)
      expect(yield* Fiber.join(nameTaken)).toMatchObject({ _tag: "RunExists" })
      expect(yield* Fiber.join(unknownRun)).toMatchObject({ _tag: "ActionMissing", key: orphan.key })
      expect(yield* Fiber.join(hookFails)).toStrictEqual({ _tag: "Refused" })
      expect((yield* Fiber.join(ruleRefuses))._tag).toBe("Unchanged")
      expect(yield* Fiber.join(recorded)).toBe(true)
      expect(yield* Fiber.join(unknownAction)).toMatchObject({ _tag: "ActionMissing" })
      expect((yield* Fiber.join(updated))._tag).toBe("Updated")
      expect((yield* Fiber.join(good2)).run.key).toStrictEqual(second.run.key)

      for (const view of [hold.view, first, second, taken]) expect(Option.isSome(yield* store.getRun(view.run.key))).toBe(true)
      expect(Option.getOrThrow(yield* store.getRun(taken.run.key)).run.createdAt).toStrictEqual(taken.run.createdAt)
      expect(Option.isSome(yield* store.getTask(secondTask.key))).toBe(true)
      expect(Option.isNone(yield* store.getRun(refused.run.key))).toBe(true)
      expect(Option.isNone(yield* store.getAction(refused.root.key))).toBe(true)
      expect(Option.isNone(yield* store.getTask(refusedTask.key))).toBe(true)
      // Nothing of it stays to take the name.
      expect((yield* store.createRun({ view: refused, task: refusedTask })).run.key).toStrictEqual(refused.run.key)
      expect(Option.isNone(yield* store.getRun(orphan.key.run))).toBe(true)
      expect(Option.isSome(yield* store.getAction(sibling.key))).toBe(true)
      expect(yield* store.listAttempts(actionKey(parent, "c9"))).toEqual([])
      expect(Option.getOrThrow(yield* store.getAction(child.key)).phase).toBe(ActionPhase.RUNNING)
    })))

  it.effect("runs created together are each answered as alone: new, a name taken before or in the batch, a hook that fails", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const taken = runView()
      yield* store.createRun({ view: taken, task: undefined })

      const shared = runView({ task: taskRef({ name: "shared.task" }) })
      const sharedTask = taskRecord({ view: shared })
      const alsoShared = runView({ task: taskRef({ name: "shared.task" }) })
      const refused = runView({ task: taskRef({ name: "refused.task" }) })
      const refusedTask = taskRecord({ view: refused })
      const twice = runView()
      const hold = yield* holding(store)
      const created = yield* submit(store.createRun({ view: shared, task: sharedTask }))
      const nameTaken = yield* submit(Effect.flip(store.createRun({ view: runView({ key: taken.run.key }), task: undefined })))
      const hookFails = yield* submit(Effect.flip(store.createRun({
        view: refused,
        task: refusedTask,
        beforeCommit: Effect.fail({ _tag: "Refused" as const })
      })))
      const firstOfTwo = yield* submit(store.createRun({ view: twice, task: undefined }))
      const sameTask = yield* submit(store.createRun({ view: alsoShared, task: taskRecord({ view: alsoShared }) }))
      const secondOfTwo = yield* submit(Effect.flip(store.createRun({ view: runView({ key: twice.run.key }), task: undefined })))
      yield* hold.release

      yield* Fiber.join(hold.fiber)
      expect((yield* Fiber.join(created)).run.key).toStrictEqual(shared.run.key)
      const exists = yield* Fiber.join(nameTaken)
      expect(exists._tag === "RunExists" && exists.existing.run.createdAt).toStrictEqual(taken.run.createdAt)
      expect(yield* Fiber.join(hookFails)).toStrictEqual({ _tag: "Refused" })
      expect((yield* Fiber.join(firstOfTwo)).run.key).toStrictEqual(twice.run.key)
      expect((yield* Fiber.join(sameTask)).run.key).toStrictEqual(alsoShared.run.key)
      const second = yield* Fiber.join(secondOfTwo)
      expect(second._tag === "RunExists" && second.existing.run.createdAt).toStrictEqual(twice.run.createdAt)

      for (const view of [shared, alsoShared, twice]) {
        expect(comparable(Option.getOrThrow(yield* store.getRun(view.run.key)))).toStrictEqual(comparable(view))
      }
      expect(Option.isSome(yield* store.getTask(sharedTask.key))).toBe(true)
      expect(Option.isNone(yield* store.getRun(refused.run.key))).toBe(true)
      expect(Option.isNone(yield* store.getTask(refusedTask.key))).toBe(true)
      // Nothing of the refused run stays to take its name.
      expect((yield* store.createRun({ view: refused, task: refusedTask })).run.key).toStrictEqual(refused.run.key)
    })))

  it.effect("writes of one action that arrive together apply in the order they arrived", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const view = runView({ phase: ActionPhase.RUNNING })
      const one = childAction(view, "c1", { attempts: 1 })
      const two = childAction(view, "c2", { attempts: 1 })
      yield* store.createRun({ view, task: undefined })
      for (const child of [one, two]) yield* store.recordAction(child)

      // Times ten, then plus one: 11 in that order, 20 in the other.
      const times = (n: number) => (current: typeof one) => ({ ...current, attempts: current.attempts * n })
      const plus = (n: number) => (current: typeof one) => ({ ...current, attempts: current.attempts + n })
      const hold = yield* holding(store)
      const writes = [
        yield* submit(store.updateAction(one.key, times(10))),
        yield* submit(store.updateAction(two.key, plus(2))),
        yield* submit(store.updateAction(one.key, plus(1))),
        yield* submit(store.updateAction(two.key, times(3))),
        // Only once RUNNING, which the write before it makes it.
        yield* submit(store.updateAction(one.key, (current) =>
          current.phase === ActionPhase.RUNNING ? { ...current, phase: ActionPhase.SUCCEEDED, endedAt: at(50) } : undefined)),
        yield* submit(store.updateAction(two.key, (current) => ({ ...current, phase: ActionPhase.RUNNING }))),
        yield* submit(store.updateAction(one.key, (current) => ({ ...current, phase: ActionPhase.RUNNING })))
      ]
      yield* hold.release
      yield* Fiber.join(hold.fiber)
      const outcomes = yield* Effect.forEach(writes, Fiber.join)
      expect(outcomes.map((outcome) => outcome._tag)).toStrictEqual(
        ["Updated", "Updated", "Updated", "Updated", "Unchanged", "Updated", "Updated"]
      )
      const after = (key: typeof one.key) => Effect.map(store.getAction(key), Option.getOrThrow)
      expect((yield* after(one.key)).attempts).toBe(11)
      expect((yield* after(one.key)).phase).toBe(ActionPhase.RUNNING)
      expect((yield* after(two.key)).attempts).toBe(9)
    })))

  it.effect("records that arrive together are each answered as alone: new, twice, recorded before, no run, another run", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const view = runView({ phase: ActionPhase.RUNNING })
      const other = runView({ phase: ActionPhase.RUNNING })
      yield* store.createRun({ view, task: undefined })
      yield* store.createRun({ view: other, task: undefined })
      const before = childAction(view, "c0")
      yield* store.recordAction(before)
      const early = childAction(other, "c3")
      yield* store.recordEvents([storedEvent(early.key, { attempt: 2 })], (list) => attempt(list[0]!.attempt))
      const rebuild = (list: ReadonlyArray<{ readonly attempt: number }>) => attempt(list[0]!.attempt)

      const first = childAction(view, "c1")
      const orphan = childAction(runView(), "c1")
      const hold = yield* holding(store)
      // The first may start a batch of its own (on SQLite, while the held write has the connection).
      const writes = [
        yield* submit(Effect.either(store.recordAction(orphan))),
        yield* submit(Effect.either(store.recordAction(first))),
        yield* submit(Effect.either(store.recordAction({ ...first, group: "second" }))),
        yield* submit(Effect.either(store.recordAction({ ...before, group: "changed" }))),
        // A run of that name, but created at another time than the one the record was meant for.
        yield* submit(Effect.either(store.recordAction(childAction(view, "c2"), rebuild, at(1)))),
        yield* submit(Effect.either(store.recordAction(early, rebuild)))
      ]
      yield* hold.release
      yield* Fiber.join(hold.fiber)
      const answers = yield* Effect.forEach(writes, Fiber.join)
      expect(answers.map((answer) => (answer._tag === "Right" ? answer.right : answer.left._tag))).toStrictEqual(
        ["ActionMissing", true, false, false, "ActionMissing", true]
      )
      expect(Option.getOrThrow(yield* store.getAction(first.key)).group).toBe(first.group)
      expect(Option.getOrThrow(yield* store.getAction(before.key)).group).toBe(before.group)
      expect(Option.isNone(yield* store.getAction(actionKey(view, "c2")))).toBe(true)
      expect(Option.isNone(yield* store.getRun(orphan.key.run))).toBe(true)
      expect((yield* store.listAttempts(early.key)).map((found) => found.attempt)).toStrictEqual([2])
    })))

  it.effect("an update in a batch sees its run's root as the writes before it in the batch left it", () =>
    provided(Effect.gen(function*() {
      const store = yield* RunStore
      const view = runView({ phase: ActionPhase.RUNNING })
      const child = childAction(view, "c1")
      yield* store.createRun({ view, task: undefined })
      yield* store.recordAction(child)

      // apply may run more than once: each keeps what its last run saw.
      let before: ActionPhase | undefined
      let after: ActionPhase | undefined
      const hold = yield* holding(store)
      const writes = [
        yield* submit(store.updateAction(child.key, (_, context) => {
          before = context.rootPhase
          return undefined
        })),
        yield* submit(store.updateAction(view.root.key, (current) => ({ ...current, phase: ActionPhase.ABORTED, endedAt: at(60) }))),
        yield* submit(store.updateAction(actionKey(view, "c9"), (current) => current)),
        yield* submit(store.updateAction(child.key, (current, context) => {
          after = context.rootPhase
          // A column besides the state's too.
          return { ...current, phase: ActionPhase.ABORTED, endedAt: at(61), outputsUri: `s3://out/${context.rootPhase}` }
        }))
      ]
      yield* hold.release
      yield* Fiber.join(hold.fiber)
      const outcomes = yield* Effect.forEach(writes, Fiber.join)
      expect(outcomes.map((outcome) => outcome._tag)).toStrictEqual(["Unchanged", "Updated", "Missing", "Updated"])
      expect([before, after]).toStrictEqual([ActionPhase.RUNNING, ActionPhase.ABORTED])
      const stored = Option.getOrThrow(yield* store.getAction(child.key))
      expect([stored.phase, stored.endedAt, stored.outputsUri]).toStrictEqual(
        [ActionPhase.ABORTED, at(61), `s3://out/${ActionPhase.ABORTED}`]
      )
      expect(Option.getOrThrow(yield* store.getAction(view.root.key)).phase).toBe(ActionPhase.ABORTED)
    })))

  it.scoped("a write is answered only once committed: another connection reads it as soon as it is answered", () =>
    Effect.gen(function*() {
      const [mine, other] = yield* backend.twins
      const store = Context.get(mine, RunStore)
      const reader = Context.get(other, RunStore)
      const views = Array.from({ length: 12 }, () => runView({ phase: ActionPhase.RUNNING }))
      const all = <A, E>(effects: ReadonlyArray<Effect.Effect<A, E>>) => Effect.all(effects, { concurrency: "unbounded" })

      const created = yield* all(views.map((view) =>
        Effect.zipRight(store.createRun({ view, task: undefined }), reader.getRun(view.run.key))))
      expect(created.filter(Option.isNone)).toHaveLength(0)

      const children = views.map((view) => childAction(view, "c1"))
      const recorded = yield* all(children.map((child) =>
        Effect.zipRight(store.recordAction(child), reader.getAction(child.key))))
      expect(recorded.filter(Option.isNone)).toHaveLength(0)

      const updated = yield* all(children.map((child) =>
        Effect.zipRight(
          store.updateAction(child.key, (current) => ({ ...current, phase: ActionPhase.RUNNING })),
          reader.getAction(child.key)
        )))
      expect(updated.map((action) => Option.map(action, (found) => found.phase))).toStrictEqual(
        children.map(() => Option.some(ActionPhase.RUNNING))
      )

      const attempts = yield* all(children.map((child) =>
        Effect.zipRight(store.putAttempts(child.key, [attempt(1)]), reader.listAttempts(child.key))))
      expect(attempts.map((list) => list.length)).toStrictEqual(children.map(() => 1))

      const events = yield* all(children.map((child) =>
        Effect.zipRight(
          store.recordEvents([storedEvent(child.key, { attempt: 2 })], (list) => attempt(list[0]!.attempt)),
          reader.listAttempts(child.key)
        )))
      expect(events.map((list) => list.length)).toStrictEqual(children.map(() => 2))

      const aborted = yield* all(views.map((view) =>
        Effect.zipRight(
          store.abort(view.root.key, { reason: "stop", abortedBy: undefined }, at(100)),
          reader.getAction(view.root.key)
        )))
      expect(aborted.map((action) => Option.map(action, (found) => found.phase))).toStrictEqual(
        views.map(() => Option.some(ActionPhase.ABORTED))
      )
    }))
}
