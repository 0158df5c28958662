import { Cause, Clock, Context, Duration, Effect, Layer, Metric, PubSub, Schedule, type Scope, Stream } from "effect"
import * as Metrics from "../ports/Metrics.js"
import { BlobStore } from "../ports/BlobStore.js"
import { ChangeFeed } from "../ports/ChangeFeed.js"
import { Readiness } from "../ports/Readiness.js"
import { RunStore, type StoreUnavailable } from "../ports/RunStore.js"
import { runLocations } from "./CreateRun.js"
import { type RunKey, rootActionName, runKeyText } from "./Ids.js"
import { RunsSettings } from "./RunsSettings.js"

/** `runs.retention.*`. */
export class RetentionSettings extends Context.Tag("runs/RetentionSettings")<RetentionSettings, {
  /** Runs that finished longer ago than this are deleted; undefined: never (the default). */
  readonly maxAge: Duration.Duration | undefined
  /** How often a pass looks for them (the first pass runs at start-up). */
  readonly interval: Duration.Duration
  /** Runs deleted per transaction: each batch holds writers up only as long as deleting it takes. */
  readonly batchSize: number
}>() {}

/** What one pass did. */
export interface RetentionPass {
  /** Runs whose root ended before this were due. */
  readonly endedBefore: Date
  /** Runs deleted by this pass. */
  readonly deleted: number
  /** Another process was deleting runs (Postgres), so this one left it to it. */
  readonly busy: boolean
}

/** Retention (`runs.retention.maxAge`): finished runs older than the limit are deleted, whole. */
export class Retention extends Context.Tag("runs/Retention")<Retention, {
  /** One pass: batch after batch, every run finished more than `maxAge` ago (by the clock now), their inputs
   * folders under `runs.storagePrefix` too; watchers of them end cleanly. Nothing when `maxAge` is not set. */
  readonly pass: Effect.Effect<RetentionPass, StoreUnavailable>
  /** Every pass's result as it ends (for metrics and tests), from the moment of the subscription. */
  readonly passes: Effect.Effect<Stream.Stream<RetentionPass>, never, Scope.Scope>
}>() {}

export const make = Effect.gen(function*() {
  const store = yield* RunStore
  const blobs = yield* BlobStore
  const feed = yield* ChangeFeed
  const { storagePrefix } = yield* RunsSettings
  const { batchSize, maxAge } = yield* RetentionSettings
  const results = yield* PubSub.unbounded<RetentionPass>()

  // Inputs written for a run live in its own folder under the storage prefix. Offloaded inputs are the
  // client's and stay. A folder that cannot be deleted is logged and left: the run goes all the same.
  const deleteInputs = (runs: ReadonlyArray<RunKey>) =>
    Effect.forEach(runs, (run) =>
      blobs.deleteFolder(`${runLocations(storagePrefix, run).base}/inputs`).pipe(
        Effect.catchTags({
          // Not a folder this server writes (a storage prefix of another scheme): there is nothing of ours.
          UnreadableBlob: () => Effect.void,
          BlobFailure: (failure) =>
            Effect.logWarning(`retention: cannot delete the inputs of run ${runKeyText(run)}: ${failure.reason}`)
        })
      ), { discard: true })

  const pass: Retention["Type"]["pass"] = Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    if (maxAge === undefined) return { endedBefore: new Date(now), deleted: 0, busy: false }
    const endedBefore = new Date(now - Duration.toMillis(maxAge))
    let deleted = 0
    for (;;) {
      const outcome = yield* store.deleteFinishedRuns({ endedBefore, limit: batchSize, beforeCommit: deleteInputs })
      if (outcome._tag === "Busy") return { endedBefore, deleted, busy: true }
      if (outcome.runs.length > 0) {
        deleted += outcome.runs.length
        yield* Metric.incrementBy(Metrics.retentionDeleted, outcome.runs.length)
        yield* feed.publish(outcome.runs.map((run) => ({ action: { run, name: rootActionName }, kind: "deleted" as const })))
      }
      if (outcome.runs.length < batchSize) return { endedBefore, deleted, busy: false }
      // Between batches, whatever else waits for the database goes first.
      yield* Effect.yieldNow()
    }
  }).pipe(
    Effect.tap((result) =>
      result.deleted > 0
        ? Effect.logInfo(`retention: deleted ${result.deleted} run(s) that finished before ${result.endedBefore.toISOString()}`)
        : result.busy
        ? Effect.logDebug("retention: another replica is deleting finished runs")
        : Effect.logDebug("retention: no finished run is due")
    ),
    Effect.tap((result) => PubSub.publish(results, result)),
    Effect.withSpan("Retention.pass")
  )

  return Retention.of({
    pass,
    passes: Effect.map(PubSub.subscribe(results), (queue) => Stream.fromQueue(queue))
  })
})

/** Needs RunStore, BlobStore, ChangeFeed, RunsSettings and RetentionSettings. */
export const layer = Layer.effect(Retention, make)

const reasonOf = (cause: Cause.Cause<unknown>): string => {
  const error = Cause.squash(cause)
  if (typeof error === "object" && error !== null && "reason" in error) return String(error.reason)
  return error instanceof Error ? error.message : String(error)
}

/**
 * A pass once the schema is migrated (Postgres migrates in the background; looked at once a second until then),
 * then one every `interval`, in the background for the layer's lifetime; a pass that fails is logged and the
 * next one tries again. Nothing runs when `maxAge` is not set.
 */
export const layerSchedule: Layer.Layer<never, never, Retention | RetentionSettings | Readiness> = Layer.scopedDiscard(
  Effect.gen(function*() {
    const retention = yield* Retention
    const readiness = yield* Readiness
    const { interval, maxAge } = yield* RetentionSettings
    if (maxAge === undefined) return
    yield* Effect.logInfo(
      `retention: runs that finished more than ${Duration.format(maxAge)} ago are deleted, checked every ${
        Duration.format(interval)
      }`
    )
    const once = retention.pass.pipe(
      Effect.catchAllCause((cause) =>
        Cause.isInterruptedOnly(cause)
          ? Effect.failCause(cause)
          : Effect.logWarning(`retention: the pass failed, the next one tries again: ${reasonOf(cause)}`)
      )
    )
    yield* Effect.retry(readiness.migrated, Schedule.spaced(Duration.seconds(1))).pipe(
      Effect.zipRight(Effect.forever(Effect.zipRight(once, Effect.sleep(interval)))),
      Effect.forkScoped
    )
  })
)
