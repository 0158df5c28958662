import { Code, ConnectError } from "@connectrpc/connect"

/**
 * A stream's messages as they are, calling `ended` once with the error it ended with (undefined when it
 * completed), or with a `Canceled` error when the client went away first: connect-node then aborts the signal
 * and may never pull again.
 */
export const onStreamEnd = <T>(
  messages: AsyncIterable<T>,
  signal: AbortSignal,
  ended: (error: unknown) => void
): AsyncIterable<T> => ({
  [Symbol.asyncIterator]: () => {
    const iterator = messages[Symbol.asyncIterator]()
    let done = false
    const end = (error: unknown) => {
      if (done) return
      done = true
      signal.removeEventListener("abort", cancelled)
      ended(error)
    }
    const cancelled = () => end(new ConnectError("the client cancelled the stream", Code.Canceled))
    if (signal.aborted) cancelled()
    else signal.addEventListener("abort", cancelled, { once: true })
    const settled = (result: IteratorResult<T>) => {
      if (result.done === true) end(signal.aborted ? new ConnectError("cancelled", Code.Canceled) : undefined)
      return result
    }
    const failed = (error: unknown): never => {
      end(error)
      throw error
    }
    return {
      next: () => iterator.next().then(settled, failed),
      return: (value?: unknown) => {
        end(new ConnectError("the stream was not read to its end", Code.Canceled))
        return iterator.return?.(value) ?? Promise.resolve({ done: true as const, value: undefined as T })
      },
      throw: (error?: unknown) => {
        end(error)
        return iterator.throw?.(error) ?? Promise.reject(error)
      }
    }
  }
})
