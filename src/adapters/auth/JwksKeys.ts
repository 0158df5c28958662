import * as fs from "node:fs/promises"
import { Clock, Data, Duration, Effect, Ref } from "effect"
import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from "jose"

/** Where the identity provider publishes its signing keys: its `jwks_uri`, or a file an operator keeps. */
export type JwksSource = { readonly url: string } | { readonly file: string }

export class KeysUnavailable extends Data.TaggedError("KeysUnavailable")<{ readonly reason: string }> {}

export const describeSource = (source: JwksSource): string => ("url" in source ? source.url : source.file)

const keySetFrom = (text: string): JSONWebKeySet => {
  const parsed: unknown = JSON.parse(text)
  const keys = typeof parsed === "object" && parsed !== null && "keys" in parsed ? parsed.keys : undefined
  if (!Array.isArray(keys) || keys.length === 0) throw new Error("expected a JSON Web Key Set with at least one key")
  return parsed as JSONWebKeySet
}

const read = (source: JwksSource) => async (signal: AbortSignal): Promise<string> => {
  if ("file" in source) return fs.readFile(source.file, { encoding: "utf8", signal })
  const response = await fetch(source.url, { signal, headers: { accept: "application/json" } })
  if (!response.ok) throw new Error(`HTTP ${response.status}`)
  return response.text()
}

/** Reads and parses the key set once, into the keys to verify with. */
export const loadKeySet = (source: JwksSource, timeout: Duration.Duration): Effect.Effect<JWTVerifyGetKey, KeysUnavailable> =>
  Effect.tryPromise({
    try: (signal) => read(source)(signal).then((text) => createLocalJWKSet(keySetFrom(text))),
    catch: (cause) =>
      new KeysUnavailable({ reason: `${describeSource(source)}: ${cause instanceof Error ? cause.message : String(cause)}` })
  }).pipe(
    Effect.timeoutFail({
      duration: timeout,
      onTimeout: () => new KeysUnavailable({ reason: `${describeSource(source)}: no answer in ${Duration.format(timeout)}` })
    })
  )

interface State {
  readonly keys: JWTVerifyGetKey | undefined
  /** When the last load was tried, whether it worked or not. */
  readonly triedAt: number | undefined
  readonly lastFailure: string | undefined
}

export interface KeyCacheOptions {
  readonly load: Effect.Effect<JWTVerifyGetKey, KeysUnavailable>
  /** Keys older than this are loaded again before they are used, so removed keys stop working. */
  readonly maxAge: Duration.Duration
  /** A token signed by a key not in the set loads the set again, at most once per this interval. */
  readonly cooldown: Duration.Duration
}

/**
 * The identity provider's keys, loaded on first use and kept. They are loaded again when older than `maxAge`,
 * and when a token names a key the set lacks (the provider rotated its keys) unless the last load was less
 * than `cooldown` ago, so a stream of tokens with made-up key ids cannot make the service hammer the provider.
 * A failed load keeps the keys it had: a provider that is briefly down does not lock everyone out.
 */
export const makeKeyCache = (options: KeyCacheOptions) =>
  Effect.gen(function*() {
    const state = yield* Ref.make<State>({ keys: undefined, triedAt: undefined, lastFailure: undefined })
    const loading = yield* Effect.makeSemaphore(1)
    const maxAgeMs = Duration.toMillis(options.maxAge)
    const cooldownMs = Duration.toMillis(options.cooldown)

    const usable = (current: State): Effect.Effect<JWTVerifyGetKey, KeysUnavailable> =>
      current.keys === undefined
        ? Effect.fail(new KeysUnavailable({ reason: current.lastFailure ?? "keys not loaded" }))
        : Effect.succeed(current.keys)

    /** Loads unless `fresh` says the state (read again once this caller may load) is recent enough. */
    const loadUnless = (fresh: (current: State, now: number, triedAt: number) => boolean) =>
      loading.withPermits(1)(Effect.gen(function*() {
        const current = yield* Ref.get(state)
        const now = yield* Clock.currentTimeMillis
        if (current.triedAt !== undefined && fresh(current, now, current.triedAt)) return yield* usable(current)
        const loaded = yield* Effect.either(options.load)
        const next: State = loaded._tag === "Right"
          ? { keys: loaded.right, triedAt: now, lastFailure: undefined }
          : { keys: current.keys, triedAt: now, lastFailure: loaded.left.reason }
        yield* Ref.set(state, next)
        if (loaded._tag === "Left") {
          yield* Effect.logWarning(`auth: cannot load the JWT signing keys: ${loaded.left.reason}`).pipe(
            Effect.annotateLogs({ keptOldKeys: current.keys !== undefined })
          )
        }
        return yield* usable(next)
      }))

    const current = Effect.flatMap(Effect.zip(Ref.get(state), Clock.currentTimeMillis), ([known, now]) =>
      known.keys !== undefined && known.triedAt !== undefined && now - known.triedAt < maxAgeMs
        ? Effect.succeed(known.keys)
        : loadUnless((again, at, triedAt) => at - triedAt < (again.keys === undefined ? cooldownMs : maxAgeMs)))

    return {
      /** The keys to verify with, loaded first if there are none yet or they are too old. */
      current,
      /** After a token named a key the set lacks: the keys, loaded again unless that happened within `cooldown`. */
      afterUnknownKey: (seen: JWTVerifyGetKey) =>
        loadUnless((again, at, triedAt) => again.keys !== seen || at - triedAt < cooldownMs)
    }
  })
