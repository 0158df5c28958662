import { Code, ConnectError, createClient } from "@connectrpc/connect"
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node"
import { describe, expect, it } from "@effect/vitest"
import * as https from "node:https"
import * as tls from "node:tls"
import { Context, Effect, Layer } from "effect"
import { RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import * as MemoryRunStore from "../../src/adapters/memory/MemoryRunStore.js"
import { ServerAddress } from "../../src/app/ServerLive.js"
import { selfSignedCertificate } from "../support/Auth.js"
import { createNamed, project } from "../support/RunRequests.js"
import { layerTestServer } from "../support/TestApp.js"

/** A server with `runs.server.tls` set to a certificate made for the test; the certificate is the client's CA. */
const tlsServer = Effect.gen(function*() {
  const certificate = yield* selfSignedCertificate
  const server = yield* Layer.build(layerTestServer(MemoryRunStore.layer, { tls: certificate }))
  const address = Context.get(server, ServerAddress)
  return { ca: certificate.cert, host: address.host, port: address.port, baseUrl: `https://${address.host}:${address.port}` }
})

/** The protocol the server chooses by ALPN when a client offers `protocols`. */
const negotiated = (server: { readonly ca: Buffer; readonly host: string; readonly port: number }, protocols: Array<string>) =>
  Effect.async<string | false | null>((resume) => {
    const socket = tls.connect({ host: server.host, port: server.port, ca: server.ca, ALPNProtocols: protocols }, () => {
      resume(Effect.succeed(socket.alpnProtocol))
      socket.end()
    })
    socket.once("error", (error) => resume(Effect.die(error)))
  })

describe("TLS (runs.server.tls)", () => {
  it.scopedLive("HTTPS with HTTP/2 and HTTP/1.1 on one port, chosen by ALPN", () =>
    Effect.gen(function*() {
      const server = yield* tlsServer
      expect(yield* negotiated(server, ["h2", "http/1.1"])).toBe("h2")
      expect(yield* negotiated(server, ["http/1.1"])).toBe("http/1.1")

      const transports = [
        ["connect-h2", createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "2", nodeOptions: { ca: server.ca } })],
        ["connect-http1", createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1", nodeOptions: { ca: server.ca } })],
        ["grpc-h2", createGrpcTransport({ baseUrl: server.baseUrl, nodeOptions: { ca: server.ca } })]
      ] as const
      for (const [name, transport] of transports) {
        const runs = createClient(RunService, transport)
        const created = yield* Effect.promise(() => runs.createRun(createNamed(name)))
        expect(created.run?.action?.id?.run?.name, name).toBe(name)
        const missing = yield* Effect.promise(() =>
          runs.getRunDetails({ runId: { org: "", project: project.name, domain: project.domain, name: "absent" } })
            .then(() => undefined, ConnectError.from)
        )
        expect(missing?.code, name).toBe(Code.NotFound)
      }
    }))

  it.scopedLive("health checks answer over HTTPS, and a cleartext client gets no answer", () =>
    Effect.gen(function*() {
      const server = yield* tlsServer
      const status = yield* Effect.async<number | undefined>((resume) => {
        https.get(`${server.baseUrl}/healthz`, { ca: server.ca }, (response) => {
          response.resume()
          resume(Effect.succeed(response.statusCode))
        }).once("error", (error) => resume(Effect.die(error)))
      })
      expect(status).toBe(200)
      const cleartext = yield* Effect.promise(() =>
        fetch(`http://${server.host}:${server.port}/healthz`).then(() => "answered", () => "refused")
      )
      expect(cleartext).toBe("refused")
    }))
})
