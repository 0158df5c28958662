import { Clock, Duration, Effect, Queue, Schedule, type Scope, Stream } from "effect"
import {
  type PendingChanges,
  ResourceExhausted,
  stallMessage,
  type WatchFailure,
  WatchSettings
} from "../../domain/WatchRules.js"
import { type Change, ChangeFeed, type ChangesMissed } from "../../ports/ChangeFeed.js"
import { StoreUnavailable } from "../../ports/RunStore.js"

const interrupted = (missed: ChangesMissed) =>
  new StoreUnavailable({ reason: `change notifications were interrupted (${missed.reason}); watch again` })

/**
 * Subscribes to the change feed for the life of the scope and drains it at once into a buffer that keeps one
 * change per entity (`keyOf`; undefined drops the change): the watch re-reads each entity, so the latest
 * state wins. The feed is drained even when the client reads slowly, so a slow client never holds back the
 * feed; past `maxPending` entities, or when changes waited `stallTimeout` without the watch taking any, the
 * watch fails with `ResourceExhausted` and drops what it holds and what comes after.
 */
export const pendingChanges = (
  keyOf: (change: Change) => string | undefined
): Effect.Effect<PendingChanges, StoreUnavailable, ChangeFeed | WatchSettings | Scope.Scope> =>
  Effect.gen(function*() {
    const feed = yield* ChangeFeed
    const { maxPending, stallTimeout } = yield* WatchSettings
    const changes = yield* Effect.mapError(feed.subscribe, (missed) => interrupted(missed))
    const pending = new Map<string, Change>()
    let failure: WatchFailure | undefined
    // Since when a change has waited without the watch taking any (undefined: none waits).
    let waitingSince: number | undefined
    const wake = yield* Queue.sliding<void>(1)
    const clock = yield* Effect.clock

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
        if (pending.size > maxPending) {
          return fail(new ResourceExhausted({ message: `the watcher has more than ${maxPending} updates pending; watch again` }))
        }
        waitingSince ??= clock.unsafeCurrentTimeMillis()
        wake.unsafeOffer(undefined)
        return Effect.void
      })

    yield* Stream.runForEach(changes, offer).pipe(
      Effect.catchAll((missed) => fail(interrupted(missed))),
      Effect.forkScoped
    )
    const stallMillis = Duration.toMillis(stallTimeout)
    yield* Clock.currentTimeMillis.pipe(
      Effect.flatMap((now) =>
        waitingSince !== undefined && failure === undefined && now - waitingSince >= stallMillis
          ? fail(new ResourceExhausted({ message: stallMessage(stallTimeout) }))
          : Effect.void
      ),
      Effect.repeat(Schedule.spaced(Duration.millis(Math.max(1, Math.min(1000, stallMillis / 4))))),
      Effect.forkScoped
    )

    const next: PendingChanges = Effect.suspend(() => {
      if (failure !== undefined) return Effect.fail(failure)
      if (pending.size > 0) {
        const batch = Array.from(pending.values())
        pending.clear()
        waitingSince = undefined
        return Effect.succeed(batch)
      }
      return Effect.zipRight(Queue.take(wake), next)
    })
    return next
  })
