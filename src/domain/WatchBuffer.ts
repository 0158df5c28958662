import { Context, Data, Effect, Queue, type Scope, Stream } from "effect"
import { type Change, ChangeFeed, type ChangesMissed } from "../ports/ChangeFeed.js"
import { StoreUnavailable } from "../ports/RunStore.js"

/** A watcher fell further behind than `runs.watchBufferSize` entities (answered `ResourceExhausted`). */
export class ResourceExhausted extends Data.TaggedError("ResourceExhausted")<{ readonly message: string }> {}

/** The settings of the watches (from `runs.*` in the configuration). */
export class WatchSettings extends Context.Tag("runs/WatchSettings")<WatchSettings, {
  /** How many entities with unsent changes one watcher may have before its stream ends. */
  readonly bufferSize: number
}>() {}

export type WatchFailure = StoreUnavailable | ResourceExhausted

const interrupted = (missed: ChangesMissed) =>
  new StoreUnavailable({ reason: `change notifications were interrupted (${missed.reason}); watch again` })

/** The changes a watch has not handled yet, merged per entity; empty batches are never returned. */
export type PendingChanges = Effect.Effect<ReadonlyArray<Change>, WatchFailure>

/**
 * Subscribes to the change feed for the life of the scope and drains it at once into a buffer that keeps one
 * change per entity (`keyOf`; undefined drops the change): the watch re-reads each entity, so the latest
 * state wins. The feed is drained even when the client reads slowly, so a slow client never holds back the
 * feed; past `bufferSize` entities the watch fails with `ResourceExhausted` and drops what comes after.
 */
export const pendingChanges = (
  keyOf: (change: Change) => string | undefined
): Effect.Effect<PendingChanges, StoreUnavailable, ChangeFeed | WatchSettings | Scope.Scope> =>
  Effect.gen(function*() {
    const feed = yield* ChangeFeed
    const { bufferSize } = yield* WatchSettings
    const changes = yield* Effect.mapError(feed.subscribe, (missed) => interrupted(missed))
    const pending = new Map<string, Change>()
    let failure: WatchFailure | undefined
    const wake = yield* Queue.sliding<void>(1)

    const fail = (error: WatchFailure) =>
      Effect.sync(() => {
        if (failure === undefined) failure = error
        pending.clear()
        wake.unsafeOffer(undefined)
      })
    const offer = (change: Change) =>
      Effect.suspend(() => {
        const key = keyOf(change)
        if (failure !== undefined || key === undefined) return Effect.void
        if (!pending.has(key)) pending.set(key, change)
        if (pending.size > bufferSize) {
          return fail(new ResourceExhausted({ message: `the watcher fell more than ${bufferSize} updates behind; watch again` }))
        }
        wake.unsafeOffer(undefined)
        return Effect.void
      })

    yield* Stream.runForEach(changes, offer).pipe(
      Effect.catchAll((missed) => fail(interrupted(missed))),
      Effect.forkScoped
    )

    const next: PendingChanges = Effect.suspend(() => {
      if (failure !== undefined) return Effect.fail(failure)
      if (pending.size > 0) {
        const batch = Array.from(pending.values())
        pending.clear()
        return Effect.succeed(batch)
      }
      return Effect.zipRight(Queue.take(wake), next)
    })
    return next
  })
