import { Context } from "effect"

/**
 * Says, before a stream is pulled, whether the pull would wait: false when it would not (or may not); true
 * when it would, and then `ready` is called once, when that may have changed (the latest `ready` given wins).
 */
export type WhenReady = (ready: () => void) => boolean

/**
 * The source's next message when it has one to give now, taken without pulling the stream (no fiber, no stream
 * step); undefined when it has none (the end and failures only a pull gives). A source's messages are never
 * undefined.
 */
export type TakeReady = () => unknown

/**
 * Given by whoever pulls a long-lived stream (the Connect bridge) to the sources in it: a source that would
 * wait in its pull (a watcher between changes) registers its `WhenReady`, so the puller can wait outside the
 * stream and pull only when something is there. A pull parked inside a stream holds its whole state (fiber,
 * stream stages) until the next change; waiting outside holds one callback. Optional: without it, or when a
 * source does not register, pulls simply wait inside.
 */
export class PullGate extends Context.Tag("runs/PullGate")<PullGate, {
  /**
   * Registers a source of the stream, with `take` when it can hand over a ready message itself; the returned
   * function unregisters it (when the source ends).
   */
  readonly register: (whenReady: WhenReady, take?: TakeReady) => () => void
}>() {}
