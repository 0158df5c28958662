import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import * as http from "node:http"
import * as http2 from "node:http2"
import * as net from "node:net"
import { makeCors } from "../../../src/adapters/http/Cors.js"
import { listenDualProtocol, type RequestHandler } from "../../../src/adapters/http/DualProtocolServer.js"

/** A server on a free port whose handler answers `ok` (or what `handler` does), stopped with the test. */
const listening = (options: { handler?: RequestHandler; headerTimeoutMs?: number; idleTimeoutMs?: number; maxRequestBytes?: number } = {}) =>
  Effect.acquireRelease(
    listenDualProtocol({
      host: "127.0.0.1",
      port: 0,
      handler: options.handler ?? ((_, res) => res.end("ok")),
      maxRequestBytes: options.maxRequestBytes ?? 1024 * 1024,
      headerTimeoutMs: options.headerTimeoutMs ?? 10_000,
      idleTimeoutMs: options.idleTimeoutMs ?? 60_000
    }),
    (server) => Effect.promise(() => server.close(100))
  )

/** A raw TCP connection, and a deferred that completes when the server closes it. */
const connect = (port: number) =>
  Effect.gen(function*() {
    const closed = yield* Deferred.make<void>()
    const socket = yield* Effect.async<net.Socket>((resume) => {
      const socket = net.connect(port, "127.0.0.1", () => resume(Effect.succeed(socket)))
    })
    socket.on("error", () => {})
    socket.on("close", () => Deferred.unsafeDone(closed, Effect.void))
    yield* Effect.addFinalizer(() => Effect.sync(() => socket.destroy()))
    return { socket, closed: Deferred.await(closed) }
  })

describe("DualProtocolServer", () => {
  it.scopedLive("closes a connection that sends nothing, and one that sends its headers a byte at a time, after the header timeout", () =>
    Effect.gen(function*() {
      const server = yield* listening({ headerTimeoutMs: 300 })
      const silent = yield* connect(server.port)
      const dripping = yield* connect(server.port)
      const header = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + "a".repeat(1_000)
      let sent = 0
      const drip = setInterval(() => {
        if (sent < header.length) dripping.socket.write(header[sent++]!)
      }, 20)
      yield* Effect.addFinalizer(() => Effect.sync(() => clearInterval(drip)))
      yield* silent.closed
      yield* dripping.closed
      // Both were closed by the deadline, not by anything they did: the drip was still going.
      expect(sent).toBeLessThan(header.length)
    }))

  it.scopedLive("keeps a connection whose request is in progress past the header timeout, then closes it once idle", () =>
    Effect.gen(function*() {
      const answer = yield* Deferred.make<void>()
      const server = yield* listening({
        headerTimeoutMs: 200,
        idleTimeoutMs: 300,
        handler: (_, res) => void Effect.runPromise(Deferred.await(answer)).then(() => res.end("late"))
      })
      const client = yield* connect(server.port)
      // A connection opened after it that sends nothing: once the server closes it, the header timeout has
      // passed for the first one too.
      const witness = yield* connect(server.port)
      const received = yield* Deferred.make<string>()
      client.socket.on("data", (chunk: Buffer) => Deferred.unsafeDone(received, Effect.succeed(chunk.toString())))
      client.socket.write("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
      yield* witness.closed
      expect(client.socket.destroyed).toBe(false)
      yield* Deferred.succeed(answer, undefined)
      expect(yield* Deferred.await(received)).toContain("late")
      // Idle now: the idle deadline closes it.
      yield* client.closed
    }))

  it.scopedLive("sends GOAWAY to an HTTP/2 session with no stream open for the idle timeout", () =>
    Effect.gen(function*() {
      const server = yield* listening({ idleTimeoutMs: 300 })
      const session = http2.connect(`http://127.0.0.1:${server.port}`)
      yield* Effect.addFinalizer(() => Effect.sync(() => session.destroy()))
      const goaway = yield* Deferred.make<void>()
      session.on("goaway", () => Deferred.unsafeDone(goaway, Effect.void))
      session.on("error", () => {})
      const answer = yield* Effect.async<string>((resume) => {
        const stream = session.request({ ":path": "/healthz" })
        let body = ""
        stream.on("data", (chunk: Buffer) => (body += chunk.toString()))
        stream.on("end", () => resume(Effect.succeed(body)))
      })
      expect(answer).toBe("ok")
      yield* Deferred.await(goaway)
    }))

  it.scopedLive("takes new calls on an HTTP/2 session while a body near the size limit is still arriving", () =>
    Effect.gen(function*() {
      const limit = 16 * 1024 * 1024
      const server = yield* listening({
        maxRequestBytes: limit,
        handler: (req, res) => {
          if (req.url === "/upload") {
            // The body is read in full before anything else of the request happens (as Connect does).
            let bytes = 0
            req.on("data", (chunk: Buffer) => (bytes += chunk.length))
            req.on("end", () => res.end(String(bytes)))
          } else {
            res.end("ok")
          }
        }
      })
      // The client's own session memory is raised so that only the server's limit is under test.
      const session = http2.connect(`http://127.0.0.1:${server.port}`, { maxSessionMemory: 100 })
      yield* Effect.addFinalizer(() => Effect.sync(() => session.destroy()))
      const get = (path: string, body?: Uint8Array) =>
        Effect.async<string, Error>((resume) => {
          const stream = session.request({ ":path": path, ":method": body === undefined ? "GET" : "POST" })
          let text = ""
          stream.on("data", (chunk: Buffer) => (text += chunk.toString()))
          stream.on("end", () => resume(Effect.succeed(text)))
          stream.on("error", (error) => resume(Effect.fail(error)))
          if (body === undefined) stream.end()
          else stream.end(body)
        })
      const upload = yield* Effect.fork(get("/upload", new Uint8Array(14 * 1024 * 1024)))
      const answers = yield* Effect.all(Array.from({ length: 20 }, () => get("/other")), { concurrency: "unbounded" })
      expect(answers).toEqual(Array.from({ length: 20 }, () => "ok"))
      expect(yield* upload.await.pipe(Effect.flatten)).toBe(String(14 * 1024 * 1024))
    }))

  it.scopedLive("answers a request in progress when it closes with Connection: close, so the client does not reuse the socket", () =>
    Effect.gen(function*() {
      const arrived = yield* Deferred.make<void>()
      const answer = yield* Deferred.make<void>()
      const server = yield* listenDualProtocol({
        host: "127.0.0.1",
        port: 0,
        handler: (_, res) => {
          Deferred.unsafeDone(arrived, Effect.void)
          void Effect.runPromise(Deferred.await(answer)).then(() => res.end("done"))
        },
        maxRequestBytes: 1024,
        headerTimeoutMs: 10_000,
        idleTimeoutMs: 60_000
      })
      const agent = new http.Agent({ keepAlive: true })
      yield* Effect.addFinalizer(() => Effect.sync(() => agent.destroy()))
      const response = yield* Effect.fork(Effect.async<http.IncomingMessage>((resume) => {
        http.get({ host: "127.0.0.1", port: server.port, path: "/", agent }, (res) => {
          res.resume()
          resume(Effect.succeed(res))
        })
      }))
      yield* Deferred.await(arrived)
      const closed = server.close(5_000)
      yield* Deferred.succeed(answer, undefined)
      const res = yield* response.await.pipe(Effect.flatten)
      expect(res.headers.connection).toBe("close")
      yield* Effect.promise(() => closed)
    }))
})

describe("CORS", () => {
  const preflight = (origins: ReadonlyArray<string>, origin: string) => {
    const headers = new Map<string, string>()
    const res = {
      setHeader: (name: string, value: string) => headers.set(name.toLowerCase(), value),
      writeHead: () => {},
      end: () => {}
    }
    const answered = makeCors(origins)(
      { method: "OPTIONS", headers: { origin, "access-control-request-method": "POST" } } as never,
      res as never
    )
    return { answered, headers }
  }

  it("lets a listed origin send credentials, and any origin under * call without them", () => {
    const listed = preflight(["http://ui.example"], "http://ui.example")
    expect(listed.answered).toBe(true)
    expect(listed.headers.get("access-control-allow-origin")).toBe("http://ui.example")
    expect(listed.headers.get("access-control-allow-credentials")).toBe("true")

    const any = preflight(["*"], "http://evil.example")
    expect(any.answered).toBe(true)
    expect(any.headers.get("access-control-allow-origin")).toBe("http://evil.example")
    expect(any.headers.has("access-control-allow-credentials")).toBe(false)

    const unlisted = preflight(["http://ui.example"], "http://evil.example")
    expect(unlisted.answered).toBe(false)
    expect(unlisted.headers.size).toBe(0)
  })
})
