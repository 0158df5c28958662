import type * as net from "node:net"
import * as tls from "node:tls"

/** `runs.server.tls`: the PEM certificate (chain) and private key, read at start-up. */
export interface TlsSettings {
  readonly cert: Buffer
  readonly key: Buffer
}

/**
 * Takes raw TCP connections and hands each one, once its TLS handshake is done, to `route` with the protocol
 * the client chose by ALPN (`h2` for HTTP/2, else HTTP/1.1), so HTTPS with both versions shares one port as
 * cleartext does. Connections whose handshake fails are closed.
 */
export const makeTlsAcceptor = (
  settings: TlsSettings,
  route: (socket: tls.TLSSocket, protocol: "h2" | "http/1.1") => void
): (socket: net.Socket) => void => {
  const server = tls.createServer({
    cert: settings.cert,
    key: settings.key,
    ALPNProtocols: ["h2", "http/1.1"],
    minVersion: "TLSv1.2",
    // Node's default (2 minutes) would let a client that opens connections and never finishes the handshake
    // hold each one that long; a real client completes it in a few round trips.
    handshakeTimeout: 10_000
  })
  server.on("secureConnection", (socket: tls.TLSSocket) => route(socket, socket.alpnProtocol === "h2" ? "h2" : "http/1.1"))
  server.on("tlsClientError", (_error, socket) => socket.destroy())
  return (socket) => server.emit("connection", socket)
}
