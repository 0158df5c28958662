import * as http from "node:http"
import * as http2 from "node:http2"
import * as net from "node:net"
import { Effect } from "effect"
import { makeTlsAcceptor, type TlsSettings } from "./Tls.js"

export type RequestHandler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse
) => void

export class ListenError extends Error {
  readonly _tag = "ListenError"
}

export interface ListeningServer {
  readonly port: number
  /** Stops accepting, lets open requests finish for up to `deadlineMs`, then cuts what is left. */
  readonly close: (deadlineMs: number) => Promise<void>
}

const http2Preface = Buffer.from("PRI * HTTP/2.0")

/**
 * One port for HTTP/1.1 and cleartext HTTP/2 with prior knowledge: the first bytes of each connection
 * decide which server gets it (curl and the Python SDK speak HTTP/1.1, gRPC clients HTTP/2). With `tls`,
 * every connection is HTTPS instead and ALPN decides.
 */
export const listenDualProtocol = (options: {
  readonly host: string
  readonly port: number
  readonly handler: RequestHandler
  readonly tls?: TlsSettings | undefined
}): Effect.Effect<ListeningServer, ListenError> =>
  Effect.async<ListeningServer, ListenError>((resume) => {
    const h1 = http.createServer(options.handler)
    const h2 = http2.createServer({}, options.handler)
    const sockets = new Set<net.Socket>()
    // The HTTP/1.1 server never listens itself, so Node does not track its idle connections: we do.
    const h1Active = new Map<net.Socket, number>()
    let closing = false
    h1.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
      const socket = req.socket
      h1Active.set(socket, (h1Active.get(socket) ?? 0) + 1)
      if (closing) res.shouldKeepAlive = false
      res.once("close", () => {
        const left = (h1Active.get(socket) ?? 1) - 1
        h1Active.set(socket, left)
        if (closing && left === 0) socket.end()
      })
    })
    const sessions = new Set<http2.Http2Session>()
    h2.on("session", (session) => {
      sessions.add(session)
      session.once("close", () => sessions.delete(session))
    })
    const acceptTls = options.tls === undefined ? undefined : makeTlsAcceptor(options.tls, (secure, protocol) => {
      secure.once("close", () => h1Active.delete(secure))
      if (protocol === "h2") h2.emit("connection", secure)
      else h1.emit("connection", secure)
    })
    // Without noDelay each small HTTP/2 frame written after another waits for the peer's ACK (Nagle).
    const server = net.createServer({ noDelay: true }, (socket) => {
      sockets.add(socket)
      socket.once("close", () => {
        sockets.delete(socket)
        h1Active.delete(socket)
      })
      if (acceptTls !== undefined) {
        socket.on("error", () => socket.destroy())
        return acceptTls(socket)
      }
      socket.once("data", (chunk) => {
        socket.pause()
        socket.unshift(chunk)
        const isHttp2 = chunk.length >= 3 && chunk.subarray(0, Math.min(chunk.length, http2Preface.length))
          .equals(http2Preface.subarray(0, Math.min(chunk.length, http2Preface.length)))
        if (isHttp2) {
          h2.emit("connection", socket)
        } else {
          h1.emit("connection", socket)
          socket.resume()
        }
      })
      socket.on("error", () => socket.destroy())
    })

    const close = (deadlineMs: number) =>
      new Promise<void>((done) => {
        const timer = setTimeout(() => {
          for (const session of sessions) session.destroy()
          for (const socket of sockets) socket.destroy()
        }, deadlineMs)
        timer.unref()
        server.close(() => {
          clearTimeout(timer)
          done()
        })
        closing = true
        for (const [socket, active] of h1Active) if (active === 0) socket.end()
        for (const session of sessions) session.close()
      })

    server.once("error", (error) => resume(Effect.fail(new ListenError(`cannot listen on ${options.host}:${options.port}: ${error.message}`))))
    server.listen(options.port, options.host, () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : options.port
      resume(Effect.succeed({ port, close }))
    })
  })
