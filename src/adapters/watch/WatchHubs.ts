import { Cause, Channel, Chunk, Clock, Deferred, Duration, Effect, Exit, Layer, Option, Queue, Schedule, Scope, Stream } from "effect"
import { actionKeyText, runKeyText } from "../../domain/Ids.js"
import {
  type HubSpec,
  ResourceExhausted,
  stallMessage,
  type WatchFailure,
  type WatchPlan,
  WatchSettings
} from "../../domain/WatchRules.js"
import { type Change, ChangeFeed } from "../../ports/ChangeFeed.js"
import { PullGate } from "../../ports/PullGate.js"
import { StoreUnavailable } from "../../ports/RunStore.js"
import { WatchHubs } from "../../ports/WatchHubs.js"

interface Listener<M> {
  readonly deliver: (sequence: number, message: M) => void
  readonly fail: (cause: Cause.Cause<unknown>) => void
  /** Ends the watcher cleanly once it has sent what it holds. */
  readonly finish: () => void
  /** Since when a message has waited for the client without it taking any; undefined when none waits. */
  readonly waitingSince: () => number | undefined
}

interface Hub<M> {
  readonly listeners: Set<Listener<M>>
  readonly ready: Deferred.Deferred<void, unknown>
  readonly scope: Scope.CloseableScope
  /** Changes the hub has heard: a read is current while this has not moved since it started. */
  changes: number
  /** With `whole` specs, the newest current read (its number and messages); none after a change. */
  latest: { readonly sequence: number; readonly messages: ReadonlyArray<M> } | undefined
  /** With `whole` specs, a watcher's first read still running: watchers that join meanwhile may wait for it. */
  reading: Reading<M> | undefined
  /** The number of the newest update applied to the hub's state (0: `start` only). */
  applied: number
  /** With `snapshot` specs, the snapshot of the state at `applied`, shared by the watchers that join then. */
  snapshot: { readonly applied: number; readonly messages: ReadonlyArray<M> } | undefined
}

interface Reading<M> {
  readonly sequence: number
  readonly changes: number
  readonly done: Deferred.Deferred<ReadonlyArray<M>, unknown>
}

/** Keeps a read that started at `changes` and `sequence` as the hub's latest, if nothing changed since. */
const keepLatest = <M>(hub: Hub<M>, changes: number, sequence: number, messages: ReadonlyArray<M>) => {
  if (hub.changes === changes && (hub.latest === undefined || hub.latest.sequence < sequence)) {
    hub.latest = { sequence, messages }
  }
}

/** What a watcher's pull gives once its stream has ended. */
const end = Symbol("end")

const interrupted = (reason: string) =>
  new StoreUnavailable({ reason: `change notifications were interrupted (${reason}); watch again` })

/**
 * Shared watches. `watch(setup)` is one watcher's stream: `setup` says which hub it joins (`key`), then come
 * its own first messages (`first`), then the hub's messages, merged by `pending` while the client is slow to
 * read; when `pending` overflows (past `runs.watchMaxPending`), or the client takes nothing for
 * `runs.watchStallTimeout` while messages wait, the watch ends with `ResourceExhausted`.
 * A hub starts with its first watcher and stops with its last; a failed read or a lost feed ends every
 * watcher of it.
 */
export const makeWatchHubs = Effect.gen(function*() {
  const feed = yield* ChangeFeed
  const { maxPending, stallTimeout } = yield* WatchSettings
  const clock = yield* Effect.clock
  const hubs = new Map<string, Hub<unknown>>()
  // Reads are numbered as they start: a read that started later saw every change an earlier one saw.
  let reads = 0

  // One feed subscription for every hub: a change goes to the hubs of its action and of its run only, so a
  // change costs the same with one hub or ten thousand.
  const routes = new Map<string, Set<(change: Change) => void>>()
  const routeOf = (change: Change) => [
    `action/${actionKeyText(change.action)}`,
    `run/${runKeyText(change.action.run)}`,
    `project/${change.action.run.project}/${change.action.run.domain}`,
    "all",
    // A run's deletion concerns the hubs of every one of its actions; it is rare, so looking through the routes
    // for them costs nothing worth keeping an index for.
    ...(change.kind === "deleted" ? actionRoutesOf(change) : [])
  ]
  const actionRoutesOf = (change: Change) => {
    const own = `action/${actionKeyText(change.action)}`
    const prefix = `action/${runKeyText(change.action.run)}/`
    return Array.from(routes.keys()).filter((route) => route !== own && route.startsWith(prefix))
  }
  let router: Scope.CloseableScope | undefined
  const routerLock = yield* Effect.makeSemaphore(1)
  const feedLost = (reason: string) =>
    Effect.gen(function*() {
      const lost = router
      router = undefined
      for (const [key, hub] of Array.from(hubs)) yield* failAll(key, hub, Cause.fail(interrupted(reason)))
      if (lost !== undefined) yield* Scope.close(lost, Exit.void)
    })
  const subscribed = routerLock.withPermits(1)(Effect.gen(function*() {
    if (router !== undefined) return
    const scope = yield* Scope.make()
    const changes = yield* Scope.extend(feed.subscribe, scope).pipe(
      Effect.tapError(() => Scope.close(scope, Exit.void)),
      Effect.mapError((missed) => interrupted(missed.reason))
    )
    router = scope
    yield* Stream.runForEach(changes, (change) =>
      Effect.sync(() => {
        for (const route of routeOf(change)) routes.get(route)?.forEach((offer) => offer(change))
      })).pipe(
        Effect.catchAll((missed) => feedLost(missed.reason)),
        Effect.interruptible,
        Effect.forkIn(scope)
      )
  }))
  yield* Effect.addFinalizer(() => Effect.suspend(() => (router === undefined ? Effect.void : Scope.close(router, Exit.void))))

  // A watcher whose client took nothing for `stallTimeout` while messages waited is ended (its pending
  // messages let go); one that reads, however far behind, is not. Looked at a few times per timeout, for all
  // watchers at once: no timer per watcher.
  const stallMillis = Duration.toMillis(stallTimeout)
  const stalled = () =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      for (const hub of hubs.values()) {
        for (const listener of hub.listeners) {
          const since = listener.waitingSince()
          if (since !== undefined && now - since >= stallMillis) {
            listener.fail(Cause.fail(new ResourceExhausted({ message: stallMessage(stallTimeout) })))
          }
        }
      }
    })
  yield* stalled().pipe(
    Effect.repeat(Schedule.spaced(Duration.millis(Math.max(1, Math.min(1000, stallMillis / 4))))),
    Effect.interruptible,
    Effect.forkScoped
  )

  const failAll = <M>(key: string, hub: Hub<M>, cause: Cause.Cause<unknown>) =>
    Effect.suspend(() => {
      if (hubs.get(key) === hub) hubs.delete(key)
      for (const listener of hub.listeners) listener.fail(cause)
      hub.listeners.clear()
      return Deferred.failCause(hub.ready, cause)
    })

  const run = <M, E>(key: string, hub: Hub<M>, spec: HubSpec<M, E>) =>
    Effect.gen(function*() {
      const wake = yield* Queue.sliding<void>(1)
      const pending = new Map<string, Change>()
      const offer = (change: Change) => {
        const changeKey = spec.keyOf(change)
        if (changeKey === undefined) return
        pending.set(changeKey, change)
        hub.changes++
        hub.latest = undefined
        wake.unsafeOffer(undefined)
      }
      yield* Effect.acquireRelease(
        Effect.sync(() => routes.set(spec.route, (routes.get(spec.route) ?? new Set()).add(offer))),
        () =>
          Effect.sync(() => {
            const offers = routes.get(spec.route)
            offers?.delete(offer)
            if (offers?.size === 0) routes.delete(spec.route)
          })
      )
      yield* subscribed
      yield* spec.start
      yield* Deferred.succeed(hub.ready, undefined)
      for (;;) {
        yield* Queue.take(wake)
        if (pending.size === 0) continue
        const batch = Array.from(pending.values())
        pending.clear()
        if (spec.endsWith !== undefined && batch.some((change) => spec.endsWith!(change))) {
          // Joiners from now on start a hub of their own (and find nothing to watch).
          if (hubs.get(key) === hub) hubs.delete(key)
          for (const listener of hub.listeners) listener.finish()
          return
        }
        const sequence = ++reads
        const changes = hub.changes
        const messages = yield* spec.update(batch)
        hub.applied = sequence
        if (spec.whole === true) keepLatest(hub, changes, sequence, messages)
        for (const message of messages) {
          for (const listener of hub.listeners) listener.deliver(sequence, message)
        }
      }
    }).pipe(
      Effect.catchAllCause((cause) => (Cause.isInterruptedOnly(cause) ? Effect.void : failAll(key, hub, cause))),
      Effect.scoped
    )

  const join = <M, E>(key: string, spec: HubSpec<M, E>, listener: Listener<M>) =>
    Effect.gen(function*() {
      const existing = hubs.get(key) as Hub<M> | undefined
      if (existing !== undefined) {
        existing.listeners.add(listener)
        return existing
      }
      const hub: Hub<M> = {
        listeners: new Set([listener]),
        ready: yield* Deferred.make<void, unknown>(),
        scope: yield* Scope.make(),
        changes: 0,
        latest: undefined,
        reading: undefined,
        applied: 0,
        snapshot: undefined
      }
      hubs.set(key, hub as Hub<unknown>)
      // Joining is uninterruptible (an acquire); the hub itself must stop when its last watcher leaves.
      yield* Effect.forkIn(Effect.interruptible(run(key, hub, spec)), hub.scope)
      return hub
    })

  const leave = <M>(key: string, hub: Hub<M>, listener: Listener<M>) =>
    Effect.suspend(() => {
      hub.listeners.delete(listener)
      if (hub.listeners.size > 0) return Effect.void
      if (hubs.get(key) === hub) hubs.delete(key)
      // With no hub left, the feed subscription goes too (the next hub subscribes again).
      const idle = hubs.size === 0 ? router : undefined
      if (idle !== undefined) router = undefined
      return Effect.zipRight(
        Scope.close(hub.scope, Exit.void),
        idle === undefined ? Effect.void : Scope.close(idle, Exit.void)
      )
    })

  /** The hub's latest read, or the first read another watcher is running, if nothing changes until it is done. */
  const sharedRead = <M>(hub: Hub<M>) =>
    Effect.suspend(() => {
      if (hub.latest !== undefined) return Effect.succeed(hub.latest)
      const reading = hub.reading
      if (reading === undefined || reading.changes !== hub.changes) return Effect.succeed(undefined)
      return Effect.map(Effect.exit(Deferred.await(reading.done)), (exit) =>
        Exit.isSuccess(exit) && hub.changes === reading.changes
          ? { sequence: reading.sequence, messages: exit.value }
          : undefined)
    })

  /** A watcher's own first read, which watchers joining meanwhile may wait for; kept as the hub's latest. */
  const ownRead = <M, F>(hub: Hub<M>, sequence: number, read: Effect.Effect<ReadonlyArray<M>, F>) =>
    // Settled however the read ends (a failure or an interruption too, even one before it starts): no watcher
    // waits for it in vain.
    Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(Deferred.make<ReadonlyArray<M>, unknown>(), (done) => {
        const reading: Reading<M> = { sequence, changes: hub.changes, done }
        hub.reading = reading
        return Effect.onExit(restore(read), (exit) =>
          Effect.suspend(() => {
            if (hub.reading === reading) hub.reading = undefined
            if (Exit.isSuccess(exit)) keepLatest(hub, reading.changes, sequence, exit.value)
            return Deferred.done(done, exit)
          }))
      })
    )

  /** One watcher: joins its hub, reads its first messages; the pull that gives its next message or the end. */
  const open = <M, E, F, G>(
    setup: Effect.Effect<WatchPlan<M, E, F>, G>,
    scope: Scope.Scope
  ): Effect.Effect<Effect.Effect<M | typeof end, E | WatchFailure>, E | F | G> =>
    Effect.gen(function*() {
      // Only what the watcher needs while open is kept (not its plan: the spec and first read go once used).
      const { first: readFirst, key, last, pending, spec } = yield* setup
      // Whoever waits for this watcher's next message: a pull inside the stream, or a puller outside it (see
      // PullGate). Called once, at the next wake-up.
      let resumePull: ((effect: Effect.Effect<void>) => void) | undefined
      let onReady: (() => void) | undefined
      const wakeUp = () => {
        const resume = resumePull
        const ready = onReady
        resumePull = undefined
        onReady = undefined
        resume?.(Effect.void)
        ready?.()
      }
      let failure: Cause.Cause<unknown> | undefined
      // Ends the stream once what is held is sent (see `finish`).
      let finishing = false
      // Until the first read starts, every hub read is older than it: nothing is kept.
      let since = Number.POSITIVE_INFINITY
      let waitingSince: number | undefined
      const fail = (cause: Cause.Cause<unknown>) => {
        failure ??= cause
        // What it had not sent is never sent now: let it go at once, not when the client reads again.
        pending.clear()
        waitingSince = undefined
        wakeUp()
      }
      const listener: Listener<M> = {
        deliver: (sequence, message) => {
          if (failure !== undefined || sequence <= since) return
          waitingSince ??= clock.unsafeCurrentTimeMillis()
          if (!pending.add(message)) {
            return fail(Cause.fail(
              new ResourceExhausted({ message: `the watcher has more than ${maxPending} updates pending; watch again` })
            ))
          }
          wakeUp()
        },
        fail,
        finish: () => {
          finishing = true
          wakeUp()
        },
        waitingSince: () => waitingSince
      }
      // Finalizers go on the watcher's scope as they are (not `acquireRelease`, which keeps the fiber's refs).
      const hub = yield* Effect.uninterruptible(Effect.tap(join(key, spec, listener), (joined) =>
        Scope.addFinalizer(scope, leave(key, joined, listener))))
      yield* Deferred.await(hub.ready).pipe(Effect.catchAllCause((cause) => Effect.failCause(cause as Cause.Cause<E>)))
      // The hub's latest read, or another watcher's first read still running, when nothing changed since it
      // started (watchers of one run opening together share one read, and each message of it is built and
      // encoded once for them all); else a read of its own.
      const shared = spec.whole === true ? yield* sharedRead(hub) : undefined
      let first: Array<M>
      if (spec.snapshot !== undefined) {
        since = hub.applied
        if (hub.snapshot?.applied !== hub.applied) hub.snapshot = { applied: hub.applied, messages: spec.snapshot() }
        first = Array.from(hub.snapshot.messages)
      } else if (shared !== undefined) {
        since = shared.sequence
        first = Array.from(shared.messages)
      } else {
        since = ++reads
        const read = readFirst ?? Effect.succeed([])
        first = Array.from(spec.whole === true ? yield* ownRead(hub, since, read) : yield* read)
      }
      let ended = false
      // The next message when there is one to give now: the first read's, else (unless it failed) a change's.
      // The end and a failure are a pull's to give.
      const takeReady = (): M | undefined => {
        if (ended) return undefined
        const message = first.shift() ?? (failure === undefined ? pending.take() : undefined)
        if (message !== undefined) ended = last?.(message) ?? false
        // The client took something: what still waits has waited since now.
        if (waitingSince !== undefined) waitingSince = pending.isEmpty() ? undefined : clock.unsafeCurrentTimeMillis()
        return message
      }
      const finished = Effect.succeed(end)
      // A pull would not wait when it has a message, the end or a failure to give.
      const waits = () => !ended && !finishing && first.length === 0 && failure === undefined && pending.isEmpty()
      const gate = yield* Effect.serviceOption(PullGate)
      if (Option.isSome(gate)) {
        const unregister = gate.value.register((ready) => {
          if (!waits()) return false
          onReady = ready
          return true
        }, takeReady)
        yield* Scope.addFinalizer(scope, Effect.sync(unregister))
      }
      const wake = Effect.async<void>((resume) => {
        if (!waits()) return resume(Effect.void)
        resumePull = resume
        return Effect.sync(() => {
          resumePull = undefined
        })
      })
      // One pull per message (no stream stages per message: a hub may have a thousand watchers).
      const pull: Effect.Effect<M | typeof end, E | WatchFailure> = Effect.suspend(() => {
        const message = takeReady()
        if (message !== undefined) return Effect.succeed(message)
        if (ended || (finishing && failure === undefined)) return finished
        if (failure !== undefined) return Effect.failCause(failure as Cause.Cause<E | WatchFailure>)
        return Effect.zipRight(wake, pull)
      })
      return pull
    })

  /**
   * A watcher's stream, as one channel with nothing kept per message but the message: its scope (the hub it
   * joined) opens on the first pull and closes with the stream, and each pull runs `pull` once. Built from
   * channel steps rather than stream combinators (`unwrapScoped`, `repeatEffectOption`), each of which is an
   * executor with its own state per open stream and allocations per message that live until the next one.
   */
  const watch = <M, E, F, G>(setup: Effect.Effect<WatchPlan<M, E, F>, G>): Stream.Stream<M, E | F | G | WatchFailure> =>
    Stream.fromChannel(Channel.flatMap(Channel.fromEffect(Scope.make()), (scope) =>
      Channel.ensuringWith(
        Channel.flatMap(Channel.fromEffect(open(setup, scope)), (pull) => {
          const again = () => next
          const next: Channel.Channel<Chunk.Chunk<M>, unknown, E | WatchFailure> = Channel.flatMap(
            Channel.fromEffect(pull),
            (message) => (message === end ? Channel.void : Channel.flatMap(Channel.write(Chunk.of(message)), again))
          )
          return next
        }),
        (exit) => Scope.close(scope, exit)
      )))

  return { watch }
})

/** The hubs over the change feed, with the watch settings. */
export const layer: Layer.Layer<WatchHubs, never, ChangeFeed | WatchSettings> = Layer.scoped(
  WatchHubs,
  Effect.map(makeWatchHubs, ({ watch }) => WatchHubs.of({ watch }))
)
