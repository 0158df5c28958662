import { expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Layer, Option, Queue, Stream, TestClock } from "effect"
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"
import * as MemoryRunStore from "../../src/adapters/memory/MemoryRunStore.js"
import { createRunRequest } from "../../src/adapters/connect/RunRequests.js"
import * as SqlRunStore from "../../src/adapters/sql/SqlRunStore.js"
import { runLocations } from "../../src/domain/CreateRun.js"
import { type ActionKey, type RunKey, rootActionName } from "../../src/domain/Ids.js"
import { type RecordActionInput, Ingestion } from "../../src/domain/Ingestion.js"
import { ActionPhase } from "../../src/domain/Phase.js"
import * as RetentionLive from "../../src/domain/Retention.js"
import { Retention, RetentionSettings } from "../../src/domain/Retention.js"
import { Runs } from "../../src/domain/Runs.js"
import { RunsSettings } from "../../src/domain/RunsSettings.js"
import { Watches } from "../../src/domain/Watches.js"
import { RunStore } from "../../src/ports/RunStore.js"
import { backends, describeBackends } from "../support/backends.js"
import { createNamed } from "../support/RunRequests.js"
import { layerRuns } from "../support/TestApp.js"

// Seconds, not hours: moving the test clock runs every timer on the way (the watch hubs look at their watchers
// once a second).
const maxAge = Duration.seconds(10)

const layerFor = <E>(store: Layer.Layer<RunStore, E>) =>
  RetentionLive.layer.pipe(
    Layer.provideMerge(layerRuns(store)),
    Layer.provideMerge(Layer.succeed(RetentionSettings, { maxAge, interval: Duration.minutes(10), batchSize: 2 }))
  )

const runKeyOf = (name: string): RunKey => ({ project: "flytesnacks", domain: "development", name })
const rootOf = (run: RunKey): ActionKey => ({ run, name: rootActionName })

const create = (name: string, createdBy = "alice") =>
  Effect.flatMap(Runs, (runs) => runs.create(createRunRequest(createNamed(name), { requestId: undefined, createdBy })))

const setPhase = (key: ActionKey, phase: ActionPhase) =>
  Effect.flatMap(Ingestion, (ingestion) =>
    ingestion.updateStatus(key, { phase, attempts: 0, cacheStatus: 0, startTime: undefined, endTime: undefined }))

const recordChild = (run: RunKey, name: string) =>
  Effect.flatMap(Ingestion, (ingestion) => {
    const input: RecordActionInput = {
      key: { run, name },
      parent: rootActionName,
      group: undefined,
      inputUri: undefined,
      spec: { kind: "task", task: undefined, taskType: undefined, shortName: undefined, environmentName: undefined, spec: undefined }
    }
    return ingestion.recordAction(input)
  })

/** The local folder of a run's inputs. */
const inputsFolder = (run: RunKey) =>
  Effect.map(RunsSettings, ({ storagePrefix }) => fileURLToPath(`${runLocations(storagePrefix, run).base}/inputs`))

const exists = (run: RunKey) => Effect.flatMap(RunsSettings, () => Effect.map(inputsFolder(run), existsSync))

const isGone = (run: RunKey) =>
  Effect.flatMap(Runs, (runs) => Effect.map(Effect.either(runs.runDetails(run)), (found) => found._tag === "Left"))

describeBackends("Retention", backends({ memory: MemoryRunStore.layer, sql: SqlRunStore.layer }), (backend) => {
  it.effect("a pass deletes the runs finished longer ago than maxAge, their inputs folders too; others stay", () =>
    Effect.gen(function*() {
      const retention = yield* Retention
      const [old1, old2, old3, running, recent] = ["old-1", "old-2", "old-3", "running", "recent"].map(runKeyOf)
      for (const run of [old1!, old2!, old3!, running!]) yield* create(run.name)
      yield* recordChild(old1!, "t1")
      yield* setPhase(rootOf(old1!), ActionPhase.SUCCEEDED)
      yield* setPhase(rootOf(old2!), ActionPhase.FAILED)
      yield* Effect.flatMap(Runs, (runs) => runs.abortRun(old3!, undefined))
      yield* setPhase(rootOf(running!), ActionPhase.RUNNING)
      for (const run of [old1!, old2!, old3!, running!]) expect(yield* exists(run), run.name).toBe(true)

      yield* TestClock.adjust(Duration.seconds(5))
      yield* create(recent!.name)
      yield* setPhase(rootOf(recent!), ActionPhase.SUCCEEDED)

      // Not yet: the first three ended at 0 s, more than maxAge ago only once the clock passes 10 s.
      yield* TestClock.adjust(Duration.seconds(5))
      expect(yield* retention.pass).toMatchObject({ deleted: 0, busy: false })
      yield* TestClock.adjust(Duration.seconds(1))
      // Three runs in batches of two.
      const pass = yield* retention.pass
      expect(pass).toEqual({ endedBefore: new Date(1000), deleted: 3, busy: false })
      for (const run of [old1!, old2!, old3!]) {
        expect(yield* isGone(run), run.name).toBe(true)
        expect(yield* exists(run), run.name).toBe(false)
      }
      for (const run of [running!, recent!]) {
        expect(yield* isGone(run), run.name).toBe(false)
        expect(yield* exists(run), run.name).toBe(true)
      }
      expect(yield* retention.pass).toMatchObject({ deleted: 0 })

      // Running runs are never due, however old.
      yield* TestClock.adjust(Duration.seconds(20))
      expect(yield* retention.pass).toMatchObject({ deleted: 1 })
      expect(yield* isGone(recent!)).toBe(true)
      expect(yield* isGone(running!)).toBe(false)
    }).pipe(Effect.provide(layerFor(backend.layer))))

  it.effect("RecordAction for a deleted run is NotFound, and a run created again under its name is not taken for it", () =>
    Effect.gen(function*() {
      const retention = yield* Retention
      const runs = yield* Runs
      const again = runKeyOf("again")
      const gone = runKeyOf("gone")
      for (const run of [again, gone]) {
        yield* create(run.name, "alice")
        // Ingestion now remembers the run's facts (its creator among them).
        yield* recordChild(run, "t1")
        yield* setPhase(rootOf(run), ActionPhase.SUCCEEDED)
      }
      yield* TestClock.adjust(Duration.seconds(20))
      expect(yield* retention.pass).toMatchObject({ deleted: 2 })

      const missing = yield* Effect.flip(recordChild(gone, "t2"))
      expect(missing._tag).toBe("NotFound")
      expect(Option.isNone(yield* Effect.flatMap(RunStore, (store) => store.getAction({ run: gone, name: "t2" })))).toBe(true)

      // What ingestion remembers of the first "again" is not the second's.
      yield* create(again.name, "bob")
      yield* recordChild(again, "t3")
      expect((yield* runs.actionDetails({ run: again, name: "t3" })).action.createdBy).toBe("bob")
    }).pipe(Effect.provide(layerFor(backend.layer))))

  it.effect("a pass ends the watches of the runs it deletes cleanly, and no other", () =>
    Effect.gen(function*() {
      const retention = yield* Retention
      const watches = yield* Watches
      const run = runKeyOf("watched")
      const other = runKeyOf("other")
      for (const key of [run, other]) {
        yield* create(key.name)
        yield* recordChild(key, "t1")
      }
      // The run is finished but its child never ended: its watches stay open. The other one is running.
      yield* setPhase(rootOf(run), ActionPhase.SUCCEEDED)
      yield* setPhase(rootOf(other), ActionPhase.RUNNING)

      /** A watch read in the background, its messages counted; returns once the first came. */
      const opened = <A, E>(stream: Stream.Stream<A, E>) =>
        Effect.gen(function*() {
          const messages = yield* Queue.unbounded<A>()
          const fiber = yield* Effect.fork(Stream.runForEach(stream, (message) => Queue.offer(messages, message)))
          yield* Queue.take(messages)
          return { fiber, messages }
        })
      const watching = [
        yield* opened(watches.actions(run, [])),
        yield* opened(watches.actionDetails({ run, name: "t1" }))
      ]
      const runList = yield* opened(watches.runs({ kind: "all" }))
      const untouched = yield* opened(watches.actionDetails({ run: other, name: "t1" }))

      yield* TestClock.adjust(Duration.seconds(20))
      expect(yield* retention.pass).toMatchObject({ deleted: 1 })
      for (const { fiber } of watching) expect(Exit.isSuccess(yield* Fiber.await(fiber))).toBe(true)

      // The other run's watch and the list of runs go on.
      yield* setPhase({ run: other, name: "t1" }, ActionPhase.RUNNING)
      expect((yield* Queue.take(untouched.messages)).action.phase).toBe(ActionPhase.RUNNING)
      yield* setPhase(rootOf(other), ActionPhase.SUCCEEDED)
      const listed = yield* Queue.take(runList.messages)
      expect(listed.map((view) => view.run.key.name)).toEqual([other.name])
      yield* Fiber.interrupt(untouched.fiber)
      yield* Fiber.interrupt(runList.fiber)
    }).pipe(Effect.provide(layerFor(backend.layer))))
})
