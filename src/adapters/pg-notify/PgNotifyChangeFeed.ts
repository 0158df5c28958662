import { Context, Data, Deferred, Effect, Layer, Option, Queue, Schedule } from "effect"
import { randomUUID } from "node:crypto"
import pg from "pg"
import { ChangeFeed, FeedSubscribers, LocalChangeFeed } from "../../ports/ChangeFeed.js"
import { ChangeNotices } from "../../ports/ChangeNotices.js"
import { decodeNotification, encodeNotifications } from "./NotifyPayload.js"

/** The channel every replica of one database notifies and listens on. */
export const channel = "runs_changes"

class ListenLost extends Data.TaggedError("ListenLost")<{ readonly reason: string }> {}

type ListenEvent = { readonly _tag: "Payload"; readonly payload: string } | { readonly _tag: "Lost"; readonly reason: string }

const reasonOf = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

export interface PgNotifyOptions {
  /** node-postgres client settings for the listening connection. */
  readonly connection: object
  /** How often the idle listening connection is checked. */
  readonly pingIntervalMillis?: number
}

/**
 * The change feed of a replica on Postgres: changes go to this process's watchers at once (the
 * `LocalChangeFeed`) and, as key-only `NOTIFY` payloads tagged with this process's id that the store sends
 * inside the transaction that made them (`ChangeNotices`), to the other replicas; this process ignores its
 * own. One dedicated connection LISTENs; when it drops, every open subscription ends with `ChangesMissed` (its
 * stream ends `Unavailable`, and the client watches again) and the connection is re-established.
 */
export const make = (options: PgNotifyOptions) =>
  Effect.gen(function*() {
    const origin = randomUUID()
    const local = yield* LocalChangeFeed
    // The store sends these inside its transactions: Postgres delivers them exactly when the change commits.
    const notices = ChangeNotices.of({ channel, payloads: (changes) => encodeNotifications(origin, changes) })

    const deliver = (payload: string) =>
      Option.match(decodeNotification(payload), {
        onNone: () => Effect.logWarning("ignored a malformed change notification"),
        onSome: (notification) => notification.origin === origin ? Effect.void : local.feed.publish(notification.changes)
      })

    const firstAttempt = yield* Deferred.make<void>()
    const session = Effect.scoped(Effect.gen(function*() {
      const events = yield* Queue.unbounded<ListenEvent>()
      let ended = false
      const client = yield* Effect.acquireRelease(
        Effect.sync(() => {
          // A client of its own, not one of the pool's connections, which come and go.
          const client = new pg.Client({ ...options.connection, keepAlive: true })
          client.on("notification", (message) => {
            if (message.channel === channel && message.payload !== undefined) events.unsafeOffer({ _tag: "Payload", payload: message.payload })
          })
          client.on("error", (error) => events.unsafeOffer({ _tag: "Lost", reason: error.message }))
          client.on("end", () => {
            ended = true
            events.unsafeOffer({ _tag: "Lost", reason: "the connection ended" })
          })
          return client
        }),
        (client) => ended ? Effect.void : Effect.promise(() => client.end().catch(() => undefined)).pipe(Effect.timeoutOption("1 second"))
      )
      const query = (text: string) => Effect.tryPromise({ try: () => client.query(text), catch: (cause) => new ListenLost({ reason: reasonOf(cause) }) })
      yield* Effect.tryPromise({ try: () => client.connect(), catch: (cause) => new ListenLost({ reason: reasonOf(cause) }) })
      yield* query(`LISTEN ${channel}`)
      yield* local.resume
      yield* Deferred.succeed(firstAttempt, undefined)
      yield* Effect.logInfo(`listening for changes on channel ${channel}`)
      yield* query("SELECT 1").pipe(
        Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new ListenLost({ reason: "the listening connection stopped answering" }) }),
        Effect.delay(options.pingIntervalMillis ?? 30_000),
        Effect.forever,
        Effect.catchAll((lost) => Queue.offer(events, { _tag: "Lost", reason: lost.reason })),
        Effect.forkScoped
      )
      while (true) {
        const event = yield* Queue.take(events)
        if (event._tag === "Lost") return yield* new ListenLost({ reason: event.reason })
        yield* deliver(event.payload)
      }
    }))

    yield* session.pipe(
      Effect.tapError((lost) =>
        Effect.zipRight(
          Effect.all([local.suspend(`the connection listening for changes was lost: ${lost.reason}`), Deferred.succeed(firstAttempt, undefined)]),
          Effect.logWarning("listening for changes failed; reconnecting").pipe(Effect.annotateLogs({ cause: lost.reason }))
        )
      ),
      Effect.retry(Schedule.exponential("200 millis").pipe(Schedule.union(Schedule.spaced("5 seconds")))),
      Effect.forkScoped
    )
    // Start-up waits a moment for the first connection, so the first watches need not fail; never for long.
    yield* Deferred.await(firstAttempt).pipe(Effect.timeoutOption("5 seconds"))

    return {
      feed: ChangeFeed.of({
        publish: (changes) => local.feed.publish(changes),
        subscribe: local.feed.subscribe
      }),
      subscribers: local.subscribers,
      notices
    }
  })

/** The feed on Postgres LISTEN/NOTIFY, for the given listening connection, and the notices the store sends;
 * built on a `LocalChangeFeed` that starts suspended (not listening yet). */
export const layer = (
  options: PgNotifyOptions
): Layer.Layer<ChangeFeed | FeedSubscribers | ChangeNotices, never, LocalChangeFeed> =>
  Layer.scopedContext(
    Effect.map(make(options), (made) =>
      Context.make(ChangeFeed, made.feed).pipe(
        Context.add(FeedSubscribers, made.subscribers),
        Context.add(ChangeNotices, made.notices)
      ))
  )

/** From a `postgres://` URL; for tests and tools. */
export const layerUrl = (url: string, options: { readonly pingIntervalMillis?: number } = {}) =>
  layer({ connection: { connectionString: url }, ...options })
