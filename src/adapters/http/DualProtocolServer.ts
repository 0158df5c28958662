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
  /** The largest request body accepted; an HTTP/2 session must be able to buffer one beside its other streams. */
  readonly maxRequestBytes: number
  /** A connection that has not sent a request's headers (HTTP/1.1) or its preface (HTTP/2) this long after it
   * opened is closed. */
  readonly headerTimeoutMs: number
  /** A connection with no request or stream open this long is closed (HTTP/2: GOAWAY); on HTTP/1.1 the next
   * request's headers must also be in by then. */
  readonly idleTimeoutMs: number
  readonly tls?: TlsSettings | undefined
}): Effect.Effect<ListeningServer, ListenError> =>
  Effect.async<ListeningServer, ListenError>((resume) => {
    const h1 = http.createServer(options.handler)
    h1.keepAliveTimeout = options.idleTimeoutMs
    // Node's default (10 MB) refuses new streams of a session while one large body is being received.
    const maxSessionMemory = Math.max(10, 3 * Math.ceil(options.maxRequestBytes / (1024 * 1024)) + 10)
    const h2 = http2.createServer({ maxSessionMemory }, options.handler)
    const sockets = new Set<net.Socket>()
    // A deadline per connection, running while it owes us a request (a timer, not socket.setTimeout: a client
    // sending one byte at a time would reset an inactivity timeout forever).
    const deadlines = new Map<net.Socket, NodeJS.Timeout>()
    const setDeadline = (socket: net.Socket, ms: number, expire: () => void) => {
      clearDeadline(socket)
      const timer = setTimeout(() => {
        deadlines.delete(socket)
        expire()
      }, ms)
      timer.unref()
      deadlines.set(socket, timer)
    }
    const clearDeadline = (socket: net.Socket) => {
      const timer = deadlines.get(socket)
      if (timer !== undefined) clearTimeout(timer)
      deadlines.delete(socket)
    }
    // The HTTP/1.1 server never listens itself, so Node does not track its idle connections: we do, with the
    // answers in progress on each (to say Connection: close on them once the server is closing).
    const h1Active = new Map<net.Socket, Set<http.ServerResponse>>()
    let closing = false
    const noKeepAlive = (res: http.ServerResponse) => {
      res.shouldKeepAlive = false
      if (!res.headersSent) res.setHeader("connection", "close")
    }
    h1.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
      const socket = req.socket
      clearDeadline(socket)
      const active = h1Active.get(socket) ?? new Set<http.ServerResponse>()
      h1Active.set(socket, active)
      active.add(res)
      if (closing) noKeepAlive(res)
      res.once("close", () => {
        active.delete(res)
        if (active.size > 0) return
        if (closing) socket.end()
        else setDeadline(socket, options.idleTimeoutMs, () => socket.destroy())
      })
    })
    const sessions = new Set<http2.Http2Session>()
    // The connection being handed to the HTTP/2 server: its session is made while it is handed over
    // (`session.socket` is a stand-in object, not the connection itself).
    let handedOver: net.Socket | undefined
    h2.on("session", (session) => {
      sessions.add(session)
      session.once("close", () => sessions.delete(session))
      const socket = handedOver
      if (socket === undefined) return
      let open = 0
      const idle = () => setDeadline(socket, options.idleTimeoutMs, () => session.close())
      // The client's SETTINGS frame ends its preface.
      session.once("remoteSettings", () => {
        if (open === 0) idle()
      })
      session.on("stream", (stream) => {
        open += 1
        clearDeadline(socket)
        stream.once("close", () => {
          open -= 1
          if (open === 0 && !session.closed) idle()
        })
      })
    })
    // Over TLS the deadlines are the secure socket's: it is what the HTTP servers see (the handshake has its own).
    const acceptTls = options.tls === undefined ? undefined : makeTlsAcceptor(options.tls, (secure, protocol) => {
      setDeadline(secure, options.headerTimeoutMs, () => secure.destroy())
      secure.once("close", () => {
        h1Active.delete(secure)
        clearDeadline(secure)
      })
      if (protocol === "h2") {
        handedOver = secure
        h2.emit("connection", secure)
        handedOver = undefined
      } else {
        h1.emit("connection", secure)
      }
    })
    // Without noDelay each small HTTP/2 frame written after another waits for the peer's ACK (Nagle).
    const server = net.createServer({ noDelay: true }, (socket) => {
      sockets.add(socket)
      socket.once("close", () => {
        sockets.delete(socket)
        h1Active.delete(socket)
        clearDeadline(socket)
      })
      if (acceptTls !== undefined) {
        socket.on("error", () => socket.destroy())
        return acceptTls(socket)
      }
      setDeadline(socket, options.headerTimeoutMs, () => socket.destroy())
      socket.once("data", (chunk) => {
        socket.pause()
        socket.unshift(chunk)
        const isHttp2 = chunk.length >= 3 && chunk.subarray(0, Math.min(chunk.length, http2Preface.length))
          .equals(http2Preface.subarray(0, Math.min(chunk.length, http2Preface.length)))
        if (isHttp2) {
          handedOver = socket
          h2.emit("connection", socket)
          handedOver = undefined
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
        for (const [socket, active] of h1Active) {
          if (active.size === 0) socket.end()
          else active.forEach(noKeepAlive)
        }
        for (const session of sessions) session.close()
      })

    server.once("error", (error) => resume(Effect.fail(new ListenError(`cannot listen on ${options.host}:${options.port}: ${error.message}`))))
    server.listen(options.port, options.host, () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : options.port
      resume(Effect.succeed({ port, close }))
    })
  })
