import { createConnection, createServer, type Socket } from "node:net"
import { Effect } from "effect"

export interface TcpProxy {
  readonly port: number
  /** Drops every connection and stops accepting new ones. */
  readonly cut: Effect.Effect<void>
  /** Accepts connections again, on the same port. */
  readonly restore: Effect.Effect<void>
}

/**
 * A TCP proxy to `target` that a test can cut and restore: a database "restart" without touching the real
 * database. Closed with the scope.
 */
export const makeTcpProxy = (target: { readonly host: string; readonly port: number }) => {
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = createConnection(target)
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.once("close", () => sockets.delete(socket))
      socket.on("error", () => {
        client.destroy()
        upstream.destroy()
      })
    }
    client.pipe(upstream).pipe(client)
  })
  const listen = (port: number) =>
    Effect.async<number>((resume) => {
      server.listen(port, "127.0.0.1", () => {
        const address = server.address()
        resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : port))
      })
    })
  const cut = Effect.async<void>((resume) => {
    for (const socket of sockets) socket.destroy()
    if (!server.listening) return resume(Effect.void)
    server.close(() => resume(Effect.void))
  })
  return Effect.acquireRelease(
    Effect.map(listen(0), (port): TcpProxy => ({ port, cut, restore: Effect.asVoid(listen(port)) })),
    () => cut
  )
}
