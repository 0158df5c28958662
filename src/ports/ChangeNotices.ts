import { Context } from "effect"
import type { Change } from "./ChangeFeed.js"

/**
 * How a store announces changes to other processes from inside the transaction that makes them, so they go out
 * exactly when it commits and never when it rolls back (Postgres `NOTIFY` is transactional). Provided by the
 * cross-process change feed; absent when the feed serves one process.
 */
export class ChangeNotices extends Context.Tag("runs/ChangeNotices")<ChangeNotices, {
  /** The channel the notices go on. */
  readonly channel: string
  /** The notices announcing `changes`, in order; each fits one notice (one change always fits one). */
  readonly payloads: (changes: ReadonlyArray<Change>) => ReadonlyArray<string>
}>() {}
