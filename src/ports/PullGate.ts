import { Context } from "effect"

/**
 * Says, before a stream is pulled, whether the pull would wait. `undefined` when it would not (or may not),
 * else a promise that settles once that may have changed.
 */
export type WhenReady = () => Promise<void> | undefined

/**
 * Given by whoever pulls a long-lived stream (the Connect bridge) to the sources in it: a source that would
 * wait in its pull (a watcher between changes) registers its `WhenReady`, so the puller can wait outside the
 * stream and pull only when something is there. A pull parked inside a stream holds its whole state (fiber,
 * stream stages) until the next change; waiting outside holds one promise. Optional: without it, or when a
 * source does not register, pulls simply wait inside.
 */
export class PullGate extends Context.Tag("runs/PullGate")<PullGate, {
  /** Registers a source of the stream; the returned function unregisters it (when the source ends). */
  readonly register: (whenReady: WhenReady) => () => void
}>() {}
