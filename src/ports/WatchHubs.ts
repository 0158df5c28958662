import { Context, type Effect, type Stream } from "effect"
import type { WatchFailure, WatchPlan } from "../domain/WatchRules.js"

/**
 * Fans committed changes out to watchers: what watchers of the same thing share (one feed subscription, one
 * read per batch of changes, one message for all of them) and how each one's unsent messages are held. The
 * rules (what a watcher reads and is sent, how it merges, when it ends) come with each watcher's plan.
 */
export class WatchHubs extends Context.Tag("runs/WatchHubs")<WatchHubs, {
  /**
   * One watcher's stream: `setup` says which hub it joins (`key`); then come its first messages (the hub's
   * `snapshot`, else its own `first` read after joining, so no change is missed between the two), then the
   * hub's messages, held by `pending` while the client is slow to read. It ends right after a message for
   * which `last` is true; with `ResourceExhausted` when `pending` passes `runs.watchMaxPending` or the client
   * takes nothing for `runs.watchStallTimeout` while messages wait; and with every watcher of its hub when a
   * hub read fails or the feed is lost (`StoreUnavailable`).
   */
  readonly watch: <M, E, F, G>(setup: Effect.Effect<WatchPlan<M, E, F>, G>) => Stream.Stream<M, E | F | G | WatchFailure>
}>() {}
