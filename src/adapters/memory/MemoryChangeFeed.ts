import { Context, Effect, Layer, Metric, PubSub, Ref, type Scope, Stream } from "effect"
import { type Change, ChangeFeed, ChangesMissed, FeedSubscribers, LocalChangeFeed } from "../../ports/ChangeFeed.js"
import { changesPublished } from "../../ports/Metrics.js"

type FeedItem =
  | { readonly _tag: "Changes"; readonly changes: ReadonlyArray<Change> }
  | { readonly _tag: "Missed"; readonly reason: string }


/**
 * An unbounded `PubSub`: publishing never waits for a subscriber. Each subscriber's queue is unbounded too;
 * the watch that holds it drains it into its own bounded, per-entity buffer.
 */
export const makeLocal = (
  options: { readonly suspended?: string } = {}
): Effect.Effect<LocalChangeFeed["Type"], never, Scope.Scope> =>
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
          changes.length === 0 ? Effect.void : Effect.asVoid(PubSub.publish(pubsub, { _tag: "Changes", changes })).pipe(
            Effect.zipLeft(Metric.incrementBy(changesPublished, changes.length))
          ),
        subscribe
      }),
      subscribers: { count: Ref.get(count) },
      suspend: (reason) =>
        Effect.zipRight(Ref.set(suspended, reason), Effect.asVoid(PubSub.publish(pubsub, { _tag: "Missed", reason }))),
      resume: Ref.set(suspended, undefined)
    }
  })

/** The in-process part of a feed that crosses processes, suspended until that feed resumes it. */
export const layerLocal = (suspended: string): Layer.Layer<LocalChangeFeed> =>
  Layer.scoped(LocalChangeFeed, makeLocal({ suspended }))

/** The feed of a single process (SQLite, memory): an Effect `PubSub`. */
export const layer: Layer.Layer<ChangeFeed | FeedSubscribers> = Layer.scopedContext(
  Effect.map(makeLocal(), (local) => Context.make(ChangeFeed, local.feed).pipe(Context.add(FeedSubscribers, local.subscribers)))
)
