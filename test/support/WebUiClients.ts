import type { DescService } from "@bufbuild/protobuf"
import { ConnectError, createClient, type Client } from "@connectrpc/connect"
import { createConnectTransport } from "@connectrpc/connect-node"
import { Effect } from "effect"
import { baseUrl } from "./TestApp.js"

/** A client of `service` that speaks as the web UI does: Connect with JSON, over HTTP/1.1, to `url`. */
export const jsonClientAt = <S extends DescService>(service: S, url: string, headers: Record<string, string> = {}): Client<S> =>
  createClient(
    service,
    createConnectTransport({
      baseUrl: url,
      httpVersion: "1.1",
      useBinaryFormat: false,
      interceptors: [(next) => (request) => {
        for (const [name, value] of Object.entries(headers)) request.header.set(name, value)
        return next(request)
      }]
    })
  )

/** The same, at the test server. */
export const jsonClient = <S extends DescService>(service: S, headers: Record<string, string> = {}) =>
  Effect.map(baseUrl, (url) => jsonClientAt(service, url, headers))

export const call = <A>(f: () => Promise<A>) => Effect.promise(f)

/** The error a call fails with, or undefined when it succeeds. */
export const failure = (f: () => Promise<unknown>) =>
  Effect.promise(() => f().then(() => undefined, (error: unknown) => ConnectError.from(error)))
