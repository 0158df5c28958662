import type { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Cause, Chunk, Context, Deferred, Effect, Exit, Queue, type Scope, Tracer } from "effect"
import { retryingConflicts } from "./SqlStoreErrors.js"
import { timedTransaction } from "./SqlTransactionTiming.js"

/**
 * Group commit: the writes that arrive while a batch commits form the next batch, one transaction and one commit
 * for all of them, and so do the writes that arrive in the same turn of the event loop as the first one (see
 * `endOfTurn`). No timer waits for company: a lone write waits at most for the callbacks already due in that
 * turn. Each write is answered only
 * after the commit that holds it, and succeeds or fails on its own:
 *
 * - A write fails with its own error only before it wrote anything, or after undoing what it wrote (the store's
 *   writes are built so); its failure is its answer and the batch goes on. No savepoints: on Postgres each is a
 *   round trip, and @effect/sql never releases them: a batch of more than 64 writes would overflow its
 *   subtransaction cache, which slows the snapshots of every other session.
 * - Anything else (a SQL error, a defect, a failed commit) rolls the batch back; its writes then run again one by
 *   one, each in its own transaction as a write without batching would, so a bad write cannot sink the others.
 *
 * Writes run in arrival order, so two writes of one action in a batch apply in that order; writes of one group
 * (`runIn`) that arrived one after the other run together, as their group's `many`, in the place of the first
 * (and a batch of nothing but an atomic group's writes runs outside a transaction, see `WriteGroup.atomic`). A
 * caller interrupted while its write waits in the queue drops it; once its batch has begun, the write may still
 * commit (as a write interrupted during its commit always could).
 */
export interface WriteBatch {
  /** Runs `write` in the next batch's transaction and answers once that transaction is over. */
  readonly run: <A, E>(write: Effect.Effect<A, E | SqlError>) => Effect.Effect<A, E | SqlError>
  /** Runs `group.one(input)` as `run` would, or, with the writes of `group` next to it in its batch, `group.many`. */
  readonly runIn: <I, A>(group: WriteGroup<I, A>, input: I) => Effect.Effect<A, SqlError>
}

/**
 * Writes of one kind that a batch runs together when they arrive one after the other: a few statements for all of
 * them instead of a few for each, since on Postgres every statement of a batch waits for the one before it.
 */
export interface WriteGroup<I, A> {
  /** One write. */
  readonly one: (input: I) => Effect.Effect<A, SqlError>
  /** The writes of `inputs`, in the batch's transaction, with the effect of `one` run for each in turn; one
   * answer each, in order. Any failure rolls the batch back (and its writes run again alone, with `one`). */
  readonly many: (inputs: ReadonlyArray<I>) => Effect.Effect<ReadonlyArray<A>, unknown>
  /** Whether `one` and `many` are each atomic and durable without a transaction around them (each writes with one
   * statement, or in a transaction of its own): a batch of nothing but this group's writes then runs them so,
   * without the round trips of its BEGIN and COMMIT. */
  readonly atomic: boolean
}

interface Entry {
  readonly write: Effect.Effect<unknown, unknown>
  readonly answer: Deferred.Deferred<unknown, unknown>
  readonly group: WriteGroup<unknown, unknown> | undefined
  readonly input: unknown
  /** The caller's span, when it is recorded. */
  readonly span: Tracer.AnySpan | undefined
  state: "queued" | "dropped" | "taken"
}

const isSqlError = (error: unknown): boolean =>
  typeof error === "object" && error !== null && "_tag" in error && error._tag === "SqlError"

/** A write's own answer: a success, or a failure by the write's own error (one that leaves nothing written). */
const isAnswer = (exit: Exit.Exit<unknown, unknown>): boolean =>
  Exit.isSuccess(exit) ||
  (Cause.isFailType(exit.cause) && !isSqlError(exit.cause.error))

/**
 * Waits for the end of the event loop's current turn (`setImmediate`: after the I/O callbacks already due). A
 * SQLite batch commits without giving the loop back, so without this every write that reached the store while
 * requests were busy with their own work would form a batch alone: the requests whose file writes completed in the
 * same turn reach the store a moment later, and join this batch instead.
 */
const endOfTurn: Effect.Effect<void> = Effect.async((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

/** The failure that rolls a batch's transaction back. */
const broken = Symbol("broken batch")

export interface WriteBatchOptions {
  /** Batches committing at once (Postgres may run several on its pool; SQLite has one writer). */
  readonly inFlight: number
  /** Writes per batch at most, so one batch never holds its locks for long. */
  readonly maxWrites: number
}

export const makeWriteBatch = (
  sql: SqlClient.SqlClient,
  options: WriteBatchOptions
): Effect.Effect<WriteBatch, never, Scope.Scope> =>
  Effect.gen(function*() {
    const queue = yield* Queue.unbounded<Entry>()

    // A write alone, after its batch was rolled back, may lose a deadlock again (to a transaction outside the
    // batches, such as a retention deletion): it runs again rather than answer Internal.
    const alone = (entry: Entry) =>
      Effect.flatMap(
        Effect.exit(retryingConflicts(timedTransaction(sql.withTransaction(entry.write)))),
        (exit) => Deferred.done(entry.answer, exit)
      )

    /** `group.many` of the entries' inputs, under the first recorded span of theirs. */
    const manyOf = (group: WriteGroup<unknown, unknown>, entries: ReadonlyArray<Entry>) => {
      const many = group.many(entries.map((entry) => entry.input))
      const span = entries.find((entry) => entry.span !== undefined)?.span
      return span === undefined ? many : Effect.withParentSpan(many, span)
    }

    /** The entries as runs of one group (or of none) each, in order. */
    const runsOf = (entries: ReadonlyArray<Entry>): Array<Array<Entry>> => {
      const runs: Array<Array<Entry>> = []
      for (const entry of entries) {
        const last = runs[runs.length - 1]
        if (last !== undefined && entry.group !== undefined && last[0]!.group === entry.group) last.push(entry)
        else runs.push([entry])
      }
      return runs
    }

    const together = (entries: ReadonlyArray<Entry>) =>
      Effect.gen(function*() {
        const exits: Array<Exit.Exit<unknown, unknown>> = []
        const one = (entry: Entry) =>
          Effect.flatMap(Effect.exit(entry.write), (exit) => {
            exits.push(exit)
            return isAnswer(exit) ? Effect.void : Effect.fail(broken)
          })
        const many = (group: WriteGroup<unknown, unknown>, run: ReadonlyArray<Entry>) =>
          Effect.flatMap(Effect.exit(manyOf(group, run)), (exit) => {
            if (Exit.isFailure(exit) || exit.value.length !== run.length) return Effect.fail(broken)
            for (const answer of exit.value) exits.push(Exit.succeed(answer))
            return Effect.void
          })
        const committed = yield* Effect.exit(timedTransaction(sql.withTransaction(
          Effect.forEach(runsOf(entries), (run) => (run.length === 1 ? one(run[0]!) : many(run[0]!.group!, run)), {
            discard: true
          })
        )))
        if (Exit.isSuccess(committed)) {
          yield* Effect.forEach(entries, (entry, i) => Deferred.done(entry.answer, exits[i]!), { discard: true })
        } else {
          yield* Effect.forEach(entries, alone, { discard: true })
        }
      })

    /** A batch of an atomic group's writes alone, outside a transaction: each write commits with its statement. */
    const bare = (group: WriteGroup<unknown, unknown>, entries: ReadonlyArray<Entry>) => {
      const each = (entry: Entry) =>
        Effect.flatMap(Effect.exit(timedTransaction(entry.write)), (exit) => Deferred.done(entry.answer, exit))
      if (entries.length === 1) return each(entries[0]!)
      return Effect.flatMap(Effect.exit(timedTransaction(manyOf(group, entries))), (exit) =>
        Exit.isSuccess(exit) && exit.value.length === entries.length
          ? Effect.forEach(entries, (entry, i) => Deferred.succeed(entry.answer, exit.value[i]), { discard: true })
          : Effect.forEach(entries, each, { discard: true }))
    }

    const atomicGroupOf = (entries: ReadonlyArray<Entry>) => {
      const group = entries[0]?.group
      return group?.atomic === true && entries.every((entry) => entry.group === group) ? group : undefined
    }

    // A batch, once taken, runs to its end (so a shutdown answers it); writes still queued are interrupted.
    const worker = Effect.gen(function*() {
      const first = Chunk.toReadonlyArray(yield* Queue.takeBetween(queue, 1, options.maxWrites))
      const taken = first.length >= options.maxWrites
        ? first
        : [...first, ...(yield* Effect.zipRight(endOfTurn, Queue.takeUpTo(queue, options.maxWrites - first.length)))]
      const entries = taken.filter((entry) => entry.state === "queued")
      for (const entry of entries) entry.state = "taken"
      const group = atomicGroupOf(entries)
      if (group !== undefined) yield* Effect.uninterruptible(bare(group, entries))
      else if (entries.length === 1) yield* Effect.uninterruptible(alone(entries[0]!))
      else if (entries.length > 1) yield* Effect.uninterruptible(together(entries))
    }).pipe(Effect.forever)

    // Runs after the workers stop (finalizers run in reverse).
    yield* Effect.addFinalizer(() =>
      Effect.flatMap(Queue.takeAll(queue), (left) =>
        Effect.forEach(left, (entry) => Deferred.interrupt(entry.answer), { discard: true })).pipe(
          Effect.zipRight(Queue.shutdown(queue))
        ))
    yield* Effect.forkScoped(Effect.all(Array.from({ length: options.inFlight }, () => worker), {
      concurrency: "unbounded",
      discard: true
    }))

    const submit = <A, E>(
      write: Effect.Effect<A, E | SqlError>,
      group: WriteGroup<unknown, unknown> | undefined,
      input: unknown
    ): Effect.Effect<A, E | SqlError> =>
      // The entry is made and queued in one step, with no point in between where the caller could be interrupted
      // (every write of a busy service passes here, so it is kept to a few runtime operations).
      Effect.uninterruptibleMask((restore) =>
        Effect.withFiberRuntime<A, E | SqlError>((fiber) => {
          const answer = Deferred.unsafeMake<unknown, unknown>(fiber.id())
          // The write's statements run on the batch's fiber: they stay children of the caller's span (when spans are
          // recorded), so a request's trace shows its SQL whichever batch carried it (the statements of a group's
          // writes run together, under the first of them whose span is recorded).
          const parent = Context.getOption(fiber.currentContext, Tracer.ParentSpan)
          const span = parent._tag === "Some" && parent.value.sampled ? parent.value : undefined
          const entry: Entry = {
            write: span === undefined ? write : Effect.withParentSpan(write, span),
            answer,
            group,
            input,
            span,
            state: "queued"
          }
          if (!Queue.unsafeOffer(queue, entry)) return Effect.interrupt
          return restore(Deferred.await(answer) as Effect.Effect<A, E | SqlError>).pipe(
            Effect.onInterrupt(() => Effect.sync(() => (entry.state = entry.state === "queued" ? "dropped" : entry.state)))
          )
        })
      )

    return {
      run: (write) => submit(write, undefined, undefined),
      runIn: <I, A>(group: WriteGroup<I, A>, input: I) =>
        submit(group.one(input), group as WriteGroup<unknown, unknown>, input)
    }
  })
