import { Context, Effect, Layer, PubSub, Ref, type Scope, Stream } from "effect"
import { type Change, ChangeFeed, ChangesMissed } from "../../ports/ChangeFeed.js"

type FeedItem =
  | { readonly _tag: "Changes"; readonly changes: ReadonlyArray<Change> }
  | { readonly _tag: "Missed"; readonly reason: string }

/** How many subscriptions are open (for tests and diagnostics). */
export class FeedSubscribers extends Context.Tag("runs/FeedSubscribers")<FeedSubscribers, {
  readonly count: Effect.Effect<number>
}>() {}

/** A feed in this process, with the hooks a cross-process adapter needs. */
export interface LocalFeed {
  readonly feed: ChangeFeed["Type"]
  readonly subscribers: FeedSubscribers["Type"]
  /** Ends every open subscription with `ChangesMissed`; until `resume`, new ones end so at once. */
  readonly suspend: (reason: string) => Effect.Effect<void>
  readonly resume: Effect.Effect<void>
}

/**
 * An unbounded `PubSub`: publishing never waits for a subscriber. Each subscriber's queue is unbounded too;
 * the watch that holds it drains it into its own bounded, per-entity buffer.
 */
export const makeLocal = (options: { readonly suspended?: string } = {}): Effect.Effect<LocalFeed, never, Scope.Scope> =>
  Effect.gen(function*() {
    const pubsub = yield* Effect.acquireRelease(PubSub.unbounded<FeedItem>(), (pubsub) => PubSub.shutdown(pubsub))
    const count = yield* Ref.make(0)
    const suspended = yield* Ref.make<string | undefined>(options.suspended)

    const subscribe = Effect.gen(function*() {
      const queue = yield* PubSub.subscribe(pubsub)
      yield* Effect.acquireRelease(Ref.update(count, (n) => n + 1), () => Ref.update(count, (n) => n - 1))
      // Checked after subscribing: a `suspend` that starts later reaches this queue.
      const reason = yield* Ref.get(suspended)
      if (reason !== undefined) return yield* new ChangesMissed({ reason })
      return Stream.fromQueue(queue).pipe(
        Stream.mapEffect((item) =>
          item._tag === "Changes" ? Effect.succeed(item.changes) : Effect.fail(new ChangesMissed({ reason: item.reason }))
        ),
        Stream.flattenIterables
      )
    })

    return {
      feed: ChangeFeed.of({
        publish: (changes) =>
          changes.length === 0 ? Effect.void : Effect.asVoid(PubSub.publish(pubsub, { _tag: "Changes", changes })),
        subscribe
      }),
      subscribers: { count: Ref.get(count) },
      suspend: (reason) =>
        Effect.zipRight(Ref.set(suspended, reason), Effect.asVoid(PubSub.publish(pubsub, { _tag: "Missed", reason }))),
      resume: Ref.set(suspended, undefined)
    }
  })

/** The feed of a single process (SQLite, memory): an Effect `PubSub`. */
export const layer: Layer.Layer<ChangeFeed | FeedSubscribers> = Layer.scopedContext(
  Effect.map(makeLocal(), (local) => Context.make(ChangeFeed, local.feed).pipe(Context.add(FeedSubscribers, local.subscribers)))
)
