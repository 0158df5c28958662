import { Context, Data, type Effect, type Scope, type Stream } from "effect"
import type { ActionKey } from "../domain/Ids.js"

/**
 * What committed: an action was created (a run's root `a0` when the run is created), an action's record
 * changed (status, abort), events were recorded for it (its attempts were rebuilt), or (`deleted`, always
 * with the root `a0`) the whole run was deleted.
 */
export type ChangeKind = "created" | "updated" | "events" | "deleted"

/** One committed change, by key only: a watcher re-reads what it shows, so a change can cross replicas. */
export interface Change {
  readonly action: ActionKey
  readonly kind: ChangeKind
}

/** The feed may have lost changes (e.g. its database connection dropped): a watcher must start over. */
export class ChangesMissed extends Data.TaggedError("ChangesMissed")<{ readonly reason: string }> {}

/** Committed changes, fanned out to every watcher in this process (and, where the adapter can, in others). */
export class ChangeFeed extends Context.Tag("runs/ChangeFeed")<ChangeFeed, {
  /** Hands changes to every subscriber. Call only after their transaction committed; never waits for a
   * subscriber and never fails. */
  readonly publish: (changes: ReadonlyArray<Change>) => Effect.Effect<void>
  /** Subscribes now, until the scope closes: the stream yields every change published after this returned,
   * in publish order, and fails with `ChangesMissed` when changes may have been lost. It buffers without
   * bound: read it promptly. Fails at once when changes cannot be delivered now (not listening). */
  readonly subscribe: Effect.Effect<Stream.Stream<Change, ChangesMissed>, ChangesMissed, Scope.Scope>
}>() {}

/** How many subscriptions a feed has open (for tests and diagnostics). */
export class FeedSubscribers extends Context.Tag("runs/FeedSubscribers")<FeedSubscribers, {
  readonly count: Effect.Effect<number>
}>() {}

/**
 * A feed within this process, with what a feed that crosses processes builds on: it hands what other processes
 * announce to `feed.publish`, and `suspend`s the local watchers while it cannot hear them.
 */
export class LocalChangeFeed extends Context.Tag("runs/LocalChangeFeed")<LocalChangeFeed, {
  readonly feed: ChangeFeed["Type"]
  readonly subscribers: FeedSubscribers["Type"]
  /** Ends every open subscription with `ChangesMissed`; until `resume`, new ones end so at once. */
  readonly suspend: (reason: string) => Effect.Effect<void>
  readonly resume: Effect.Effect<void>
}>() {}
