import type { DescMethod, DescService } from "@bufbuild/protobuf"
import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect"
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import * as http2 from "node:http2"
import { InternalRunService } from "#gen/flyteidl2/workflow/internal_run_service_pb.js"
import { RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import * as BearerAuthenticator from "../../src/adapters/auth/BearerAuthenticator.js"
import * as MemoryRunStore from "../../src/adapters/memory/MemoryRunStore.js"
import { runSteps, scriptedRun } from "../../src/app/client/ExecutorScript.js"
import { runTestClient } from "../../src/app/client/TestClient.js"
import { ServerAddress } from "../../src/app/ServerLive.js"
import { jwtSettings, keySet, serveJwks, signingKey, staticToken, token } from "../support/Auth.js"
import { type RawCall, rawCall } from "../support/RawRpc.js"
import { createNamed, project } from "../support/RunRequests.js"
import { layerTestServer } from "../support/TestApp.js"

const executorSecret = "executor-secret-0123456789abcdef"
const ciSecret = "ci-user-secret-0123456789abcdef"

/**
 * A listening server with authentication on: JWTs from a local JWKS endpoint, a static executor token and a
 * static user token; forwarded identity is trusted too, to show that the verified caller wins over it.
 */
const authServer = Effect.gen(function*() {
  const key = yield* signingKey("k1")
  const jwks = yield* serveJwks(keySet(key))
  const authenticator = BearerAuthenticator.layer({
    enabled: true,
    tokens: [staticToken("executor", "actions-service", executorSecret), staticToken("user", "ci", ciSecret)],
    jwt: jwtSettings({ url: jwks.url })
  })
  const server = yield* Layer.build(layerTestServer(MemoryRunStore.layer, { authenticator, trustIdentity: true }))
  const address = Context.get(server, ServerAddress)
  const impostor = yield* signingKey("k1")
  const bearer = (jwt: string) => `Bearer ${jwt}`
  return {
    baseUrl: `http://${address.host}:${address.port}`,
    user: bearer(yield* token(key, { sub: "alice@example.com" })),
    executorJwt: bearer(yield* token(key, { sub: "executor-7", scope: "runs:executor" })),
    executorStatic: bearer(executorSecret),
    ciStatic: bearer(ciSecret),
    /** Credentials that prove no one, each wrong in one way. */
    bad: {
      none: undefined,
      "another scheme": "Basic YWxpY2U6c2VjcmV0",
      "empty bearer": "Bearer ",
      garbage: "Bearer not-a-token",
      "unknown static token": bearer("x".repeat(32)),
      "wrong signature": bearer(yield* token(impostor, { sub: "alice@example.com" })),
      "wrong issuer": bearer(yield* token(key, { sub: "alice@example.com" }, { issuer: "https://other.example" })),
      "wrong audience": bearer(yield* token(key, { sub: "alice@example.com" }, { audience: "another-service" })),
      expired: bearer(yield* token(key, { sub: "alice@example.com" }, { expiresIn: -3600 }))
    } satisfies Record<string, string | undefined>
  }
})

const withAuthorization = (authorization: string | undefined): Interceptor => (next) => (req) => {
  if (authorization !== undefined) req.header.set("authorization", authorization)
  return next(req)
}

/** Transports that carry every kind of method (bidi streams need HTTP/2). */
const streamingTransports = (baseUrl: string, authorization: string | undefined): Record<string, Transport> => ({
  "Connect over h2c": createConnectTransport({ baseUrl, httpVersion: "2", interceptors: [withAuthorization(authorization)] }),
  gRPC: createGrpcTransport({ baseUrl, interceptors: [withAuthorization(authorization)] })
})

async function* nothing(): AsyncIterable<never> {}

/**
 * Calls `method` with an empty request (or an empty request stream) and returns its error, if any. A stream is
 * left after its first message.
 */
const invoke = async (service: DescService, transport: Transport, method: DescMethod): Promise<ConnectError | undefined> => {
  const client = createClient(service, transport) as unknown as Record<string, (input: unknown) => unknown>
  const call = client[method.localName]!
  try {
    switch (method.methodKind) {
      case "unary":
      case "client_streaming":
        await call(method.methodKind === "unary" ? {} : nothing())
        return undefined
      case "server_streaming":
      case "bidi_streaming":
        for await (const _ of call(method.methodKind === "server_streaming" ? {} : nothing()) as AsyncIterable<unknown>) break
        return undefined
    }
  } catch (error) {
    return ConnectError.from(error)
  }
}

/** Every procedure of every service, through every streaming transport, with one credential. */
const callEverything = (baseUrl: string, authorization: string | undefined) =>
  Effect.promise(async () => {
    const outcomes: Array<{ readonly procedure: string; readonly error: ConnectError | undefined }> = []
    for (const [name, transport] of Object.entries(streamingTransports(baseUrl, authorization))) {
      for (const service of [RunService, InternalRunService]) {
        for (const method of service.methods) {
          outcomes.push({ procedure: `${name} ${service.typeName}/${method.name}`, error: await invoke(service, transport, method) })
        }
      }
    }
    return outcomes
  })

const codeOf = (outcome: { readonly error: ConnectError | undefined }) => outcome.error?.code

describe("authentication on", () => {
  it.scopedLive("every procedure refuses a missing or bad credential with the same Unauthenticated, whatever was wrong", () =>
    Effect.gen(function*() {
      const server = yield* authServer
      const messages = new Set<string>()
      for (const [kind, authorization] of Object.entries(server.bad)) {
        const outcomes = yield* callEverything(server.baseUrl, authorization)
        expect(outcomes.length).toBe(2 * (RunService.methods.length + InternalRunService.methods.length))
        for (const outcome of outcomes) {
          expect(codeOf(outcome), `${kind}: ${outcome.procedure}`).toBe(Code.Unauthenticated)
          messages.add(outcome.error!.rawMessage)
        }
      }
      expect([...messages]).toEqual(["a valid bearer token is required"])
    }))

  it.scopedLive("InternalRunService needs the executor role and everything else the user role", () =>
    Effect.gen(function*() {
      const server = yield* authServer
      const isInternal = (procedure: string) => procedure.includes(`${InternalRunService.typeName}/`)
      const expectations = [
        { who: "user JWT", authorization: server.user, refused: isInternal },
        { who: "static user token", authorization: server.ciStatic, refused: isInternal },
        { who: "static executor token", authorization: server.executorStatic, refused: (p: string) => !isInternal(p) },
        // Every verified JWT is a user here (no runs.auth.jwt.userRoles); the scope adds the executor role.
        { who: "executor JWT", authorization: server.executorJwt, refused: () => false }
      ]
      for (const { authorization, refused, who } of expectations) {
        for (const outcome of yield* callEverything(server.baseUrl, authorization)) {
          const code = codeOf(outcome)
          if (refused(outcome.procedure)) {
            expect(code, `${who}: ${outcome.procedure}`).toBe(Code.PermissionDenied)
          } else {
            expect([Code.Unauthenticated, Code.PermissionDenied], `${who}: ${outcome.procedure}`).not.toContain(code)
          }
        }
      }
    }))

  it.scopedLive("Connect and gRPC-Web over HTTP/1.1 are checked too", () =>
    Effect.gen(function*() {
      const server = yield* authServer
      for (const transport of [createConnectTransport, createGrpcWebTransport]) {
        const client = (authorization: string | undefined) =>
          createClient(RunService, transport({ baseUrl: server.baseUrl, httpVersion: "1.1", interceptors: [withAuthorization(authorization)] }))
        const refused = yield* Effect.promise(() => invoke(RunService, transport({ baseUrl: server.baseUrl, httpVersion: "1.1" }), RunService.method.watchRuns))
        expect(refused?.code).toBe(Code.Unauthenticated)
        const listed = yield* Effect.promise(() => client(server.user).listRuns({ scopeBy: { case: "projectId", value: project } }))
        expect(listed.runs).toEqual([])
        const expired = yield* Effect.promise(() => client(server.bad.expired).listRuns({}).then(() => undefined, ConnectError.from))
        expect(expired?.code).toBe(Code.Unauthenticated)
      }
    }))

  it.scopedLive("a call without a valid credential is refused before its body is read, in every protocol", () =>
    Effect.gen(function*() {
      const server = yield* authServer
      const session = yield* Effect.acquireRelease(
        Effect.sync(() => http2.connect(server.baseUrl)),
        (session) => Effect.sync(() => session.destroy())
      )
      // Bytes that are neither protobuf nor JSON nor gzip: decoded, they would be InvalidArgument.
      const garbage = new Uint8Array(64 * 1024).fill(0xff)
      const calls: ReadonlyArray<Pick<RawCall, "protocol" | "streaming" | "compression">> = [
        ...(["connect-proto", "connect-json", "grpc"] as const).flatMap((protocol) => [
          { protocol, streaming: false },
          { protocol, streaming: false, compression: "gzip" as const }
        ]),
        { protocol: "connect-proto", streaming: true }
      ]
      for (const authorization of [undefined, server.bad.garbage, server.bad.expired]) {
        for (const call of calls) {
          const answer = yield* Effect.promise(() =>
            rawCall(session, {
              path: call.streaming ? "/flyteidl2.workflow.RunService/WatchRuns" : "/flyteidl2.workflow.RunService/CreateRun",
              ...call,
              body: garbage,
              quietMs: 5_000,
              ...(authorization === undefined ? {} : { headers: { authorization } })
            })
          )
          expect(answer.code, `${authorization ?? "none"} ${JSON.stringify(call)}`).toBe("unauthenticated")
          expect(answer.message).toBe("a valid bearer token is required")
        }
      }
      // With a valid credential the same bytes are read, and refused for what they are.
      const read = yield* Effect.promise(() =>
        rawCall(session, {
          path: "/flyteidl2.workflow.RunService/CreateRun",
          protocol: "connect-proto",
          streaming: false,
          body: garbage,
          quietMs: 0,
          headers: { authorization: server.user }
        })
      )
      expect(read.code).toBe("invalid_argument")

      // Over HTTP/1.1 too, and the connection serves the next call after a refused body it never read.
      const post = (body: Uint8Array, authorization?: string) =>
        Effect.promise(async () => {
          const response = await fetch(`${server.baseUrl}/flyteidl2.workflow.RunService/CreateRun`, {
            method: "POST",
            headers: {
              "content-type": "application/proto",
              "connect-protocol-version": "1",
              ...(authorization === undefined ? {} : { authorization })
            },
            body
          })
          return { status: response.status, code: ((await response.json()) as { code?: string }).code }
        })
      expect(yield* post(new Uint8Array(1024 * 1024).fill(0xff))).toEqual({ status: 401, code: "unauthenticated" })
      expect(yield* post(new Uint8Array(0), server.user)).toEqual({ status: 400, code: "invalid_argument" })
    }))

  it.scopedLive("a run's creator is the verified caller, not a forwarded header", () =>
    Effect.gen(function*() {
      const server = yield* authServer
      const runs = (authorization: string) =>
        createClient(RunService, createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1", interceptors: [withAuthorization(authorization)] }))
      const headers = { "x-forwarded-user": "mallory@example.com" }
      const byJwt = yield* Effect.promise(() => runs(server.user).createRun(createNamed("by-alice"), { headers }))
      expect(byJwt.run?.action?.metadata?.executedBy?.principal.value).toMatchObject({ id: { subject: "alice@example.com" } })
      const byToken = yield* Effect.promise(() => runs(server.ciStatic).createRun(createNamed("by-ci"), { headers }))
      expect(byToken.run?.action?.metadata?.executedBy?.principal.value).toMatchObject({ id: { subject: "ci" } })
      const mine = yield* Effect.promise(() =>
        runs(server.user).listRuns({
          scopeBy: { case: "projectId", value: project },
          request: { filters: [{ field: "created_by", function: 0, values: ["alice@example.com"] }] }
        })
      )
      expect(mine.runs.map((run) => run.action?.id?.run?.name)).toEqual(["by-alice"])
    }))

  it.scopedLive("an executor with the static token reports a run's progress through InternalRunService", () =>
    Effect.gen(function*() {
      const server = yield* authServer
      const transport = (authorization: string) =>
        createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1", interceptors: [withAuthorization(authorization)] })
      const run = { project: project.name, domain: project.domain, name: "executed" }
      yield* Effect.promise(() => createClient(RunService, transport(server.user)).createRun(createNamed(run.name)))
      const { records, reports } = scriptedRun(run)
      const codes = yield* Effect.promise(() =>
        runSteps(createClient(InternalRunService, transport(server.executorStatic)), [...records, ...reports]))
      expect(codes.every((code) => code === 0)).toBe(true)
      const details = yield* Effect.promise(() =>
        createClient(RunService, transport(server.user)).getRunDetails({ runId: { org: "", ...run } }))
      expect(details.details?.action?.status?.phase).toBe(5)
    }))

  it.scopedLive("the test client (npm run client) passes with RUNS_USER_TOKEN and RUNS_EXECUTOR_TOKEN's tokens", () =>
    Effect.gen(function*() {
      const server = yield* authServer
      const lines: Array<string> = []
      const tokens = { user: server.user.slice("Bearer ".length), executor: executorSecret }
      yield* runTestClient(server.baseUrl, (line) => lines.push(line), tokens)
      expect(lines.at(-1)).toContain("All tests completed successfully!")
      const refused = yield* Effect.flip(runTestClient(server.baseUrl, () => undefined, { user: tokens.user }))
      expect(refused.message).toContain("Unauthenticated")
    }))

  it.scopedLive("health checks and CORS preflights need no credential; a refusal still carries CORS headers", () =>
    Effect.gen(function*() {
      const server = yield* authServer
      for (const path of ["/healthz", "/readyz"]) {
        const response = yield* Effect.promise(() => fetch(`${server.baseUrl}${path}`))
        expect(response.status, path).toBe(200)
      }
      const url = `${server.baseUrl}/flyteidl2.workflow.RunService/ListRuns`
      const preflight = yield* Effect.promise(() =>
        fetch(url, {
          method: "OPTIONS",
          headers: {
            origin: "http://ui.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization,content-type,connect-protocol-version"
          }
        })
      )
      expect(preflight.status).toBe(204)
      expect(preflight.headers.get("access-control-allow-headers")).toContain("Authorization")
      const refused = yield* Effect.promise(() =>
        fetch(url, {
          method: "POST",
          headers: { origin: "http://ui.example", "content-type": "application/json", "connect-protocol-version": "1" },
          body: "{}"
        })
      )
      expect(refused.status).toBe(401)
      expect(refused.headers.get("access-control-allow-origin")).toBe("http://ui.example")
      expect(refused.headers.get("www-authenticate")).toBe("Bearer")
      expect(yield* Effect.promise(() => refused.json())).toEqual({ code: "unauthenticated", message: "a valid bearer token is required" })
    }))
})
