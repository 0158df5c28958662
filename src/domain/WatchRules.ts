import { Context, Data, Duration, type Effect } from "effect"
import type { Change } from "../ports/ChangeFeed.js"
import type { StoreUnavailable } from "../ports/RunStore.js"

/** A watcher's client stopped reading, or it holds more than `runs.watchMaxPending` entities' unsent changes
 * (answered `ResourceExhausted`). */
export class ResourceExhausted extends Data.TaggedError("ResourceExhausted")<{ readonly message: string }> {}

/** The settings of the watches (from `runs.*` in the configuration). */
export class WatchSettings extends Context.Tag("runs/WatchSettings")<WatchSettings, {
  /** How many messages a watcher holds as they came before it merges what it holds per entity. */
  readonly bufferSize: number
  /** How many entities with unsent changes one watcher may hold before its stream ends (a memory bound). */
  readonly maxPending: number
  /** How long changes may wait for a client that takes none of them before its stream ends. */
  readonly stallTimeout: Duration.Duration
}>() {}

export const stallMessage = (timeout: Duration.Duration) =>
  `the watcher's client read nothing for ${Duration.format(timeout)} while updates waited; watch again`

export type WatchFailure = StoreUnavailable | ResourceExhausted

/**
 * What watchers of the same thing share: one feed subscription, and one read per batch of changes, whatever
 * the number of watchers (1,000 browser tabs on one run cost one read per change, not 1,000).
 */
export interface HubSpec<M, E> {
  /** Whose changes the hub hears: `action/<project>/<domain>/<run>/<action>`, `run/<project>/<domain>/<run>`,
   * `project/<project>/<domain>` or `all`. */
  readonly route: string
  /** Which of them concern the hub; changes with the same key are merged while a read is running. */
  readonly keyOf: (change: Change) => string | undefined
  /**
   * A change after which the hub has nothing more to say (its run was deleted): when one comes, no update is
   * read for its batch, and every watcher ends cleanly once it has sent what it holds.
   */
  readonly endsWith?: (change: Change) => boolean
  /** Runs once, after the hub subscribed and before it handles any change (e.g. loads a tree). */
  readonly start: Effect.Effect<void, E>
  /** The messages a batch of changes makes (none when nothing a watcher sees changed). */
  readonly update: (changes: ReadonlyArray<Change>) => Effect.Effect<ReadonlyArray<M>, E>
  /**
   * True when `update`'s messages are the whole state, as a watcher's `first` are: a watcher that joins while
   * nothing changed since the hub's latest read started begins with that read instead of one of its own.
   */
  readonly whole?: boolean
  /**
   * The hub's own state as a joining watcher's first messages (it then reads nothing of its own): what `start`
   * and every `update` the hub finished so far made of it. Watchers that join between two updates share the
   * same messages (each built and encoded once).
   */
  readonly snapshot?: () => ReadonlyArray<M>
}

/** What one watcher keeps of the messages it has not sent yet. */
export interface Pending<M> {
  /** Adds a message; false when the watcher is now too far behind. */
  readonly add: (message: M) => boolean
  /** The message to send now (everything pending, merged), or undefined when nothing is pending. */
  readonly take: () => M | undefined
  /** True when `take` would give nothing. */
  readonly isEmpty: () => boolean
  /** Drops everything pending (the watcher ended). */
  readonly clear: () => void
}

/** Keeps only the newest message: each one is a whole state (run details, action details). */
export const latestOnly = <M>(): Pending<M> => {
  let pending: { readonly message: M } | undefined
  return {
    add: (message) => {
      pending = { message }
      return true
    },
    take: () => {
      const message = pending?.message
      pending = undefined
      return message
    },
    isEmpty: () => pending === undefined,
    clear: () => {
      pending = undefined
    }
  }
}

/**
 * For messages that are lists of parts (a tree's changed actions). While the client keeps up, each message goes
 * out as it came: the same object for every watcher of the hub, so built and encoded once. Past `hold` messages
 * waiting, what waits is merged into one part per key (`keyOf`), the newest of each where the key first came (a
 * message lists parents before children, so the merge does too), and goes out `max` parts at a time: the
 * further a client falls behind, the fewer messages it costs to catch up, and what it holds is bounded by the
 * number of keys (a run's actions), not by the rate of changes. What would hold more than `limit` parts is
 * merged, and `add` is false when even merged it does.
 */
export const latestPerPart = <P>(
  keyOf: (part: P) => string,
  options: { readonly hold: number; readonly limit: number; readonly max: number }
): Pending<ReadonlyArray<P>> => {
  // Messages as they came (`held` parts in all), after the merged `parts` (which go out first).
  let messages: Array<ReadonlyArray<P>> = []
  let held = 0
  const parts = new Map<string, P>()
  const merge = () => {
    for (const message of messages) for (const part of message) parts.set(keyOf(part), part)
    messages = []
    held = 0
  }
  return {
    add: (message) => {
      messages.push(message)
      held += message.length
      if (messages.length > options.hold || parts.size + held > options.limit) merge()
      return parts.size <= options.limit
    },
    take: () => {
      if (parts.size === 0) {
        const message = messages.shift()
        held -= message?.length ?? 0
        return message
      }
      merge()
      const taken: Array<P> = []
      for (const [key, part] of parts) {
        parts.delete(key)
        taken.push(part)
        if (taken.length >= options.max) break
      }
      return taken
    },
    isEmpty: () => messages.length === 0 && parts.size === 0,
    clear: () => {
      messages = []
      held = 0
      parts.clear()
    }
  }
}

/** One watcher: which hub it joins, its own first messages, how it merges what it has not sent yet. */
export interface WatchPlan<M, E, F> {
  readonly key: string
  /** Used when this watcher starts the hub. */
  readonly spec: HubSpec<M, E>
  /** Read after the watcher joined the hub (so no change is missed between the two); not read when the spec
   * has a `snapshot`. */
  readonly first?: Effect.Effect<ReadonlyArray<M>, F>
  readonly pending: Pending<M>
  /** The stream ends right after a message for which this is true. */
  readonly last?: (message: M) => boolean
}

