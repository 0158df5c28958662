import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect"
import { createConnectTransport } from "@connectrpc/connect-node"
import { describe, expect, it } from "@effect/vitest"
import * as https from "node:https"
import { join } from "node:path"
import { writeFileSync } from "node:fs"
import { Effect, Schedule } from "effect"
import { RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import { selfSignedCertificate } from "../support/Auth.js"
import { createNamed } from "../support/RunRequests.js"
import { freePort, startService } from "../support/ServiceProcess.js"

const ciSecret = "ci-secret-from-the-environment-0123"
const executorSecret = "executor-secret-from-a-file-0123"

const withToken = (secret: string | undefined): Interceptor => (next) => (req) => {
  if (secret !== undefined) req.header.set("authorization", `Bearer ${secret}`)
  return next(req)
}

const status = (url: string, ca: Buffer) =>
  Effect.async<number | undefined, Error>((resume) => {
    https.get(url, { ca }, (response) => {
      response.resume()
      resume(Effect.succeed(response.statusCode))
    }).once("error", (error) => resume(Effect.fail(error)))
  })

describe("the service process with runs.auth and runs.server.tls", () => {
  it.live("serves HTTPS and requires a token, configured from the environment and a tokens file", () =>
    Effect.scoped(Effect.gen(function*() {
      const certificate = yield* selfSignedCertificate
      const cwd = certificate.dir
      writeFileSync(join(cwd, "tokens"), `# executors\nexecutor:actions-service:${executorSecret}\n`)
      const port = yield* freePort
      const service = yield* startService({
        cwd,
        env: {
          RUNS_SERVER_PORT: String(port),
          RUNS_SERVER_TLS_CERT_FILE: join(cwd, "cert.pem"),
          RUNS_SERVER_TLS_KEY_FILE: join(cwd, "key.pem"),
          RUNS_AUTH_ENABLED: "true",
          RUNS_AUTH_TOKENS: `user:ci:${ciSecret}`,
          RUNS_AUTH_TOKENS_FILE: "tokens"
        }
      })
      const baseUrl = `https://127.0.0.1:${port}`
      yield* status(`${baseUrl}/readyz`, certificate.cert).pipe(
        Effect.filterOrFail((code) => code === 200, () => new Error("not ready")),
        // Start-up takes seconds on a loaded machine (tsx compiles the service first).
        Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("40 seconds")))
      )
      const runs = (secret: string | undefined) =>
        createClient(RunService, createConnectTransport({ baseUrl, httpVersion: "2", nodeOptions: { ca: certificate.cert }, interceptors: [withToken(secret)] }))
      const refused = (secret: string | undefined) =>
        Effect.promise(() => runs(secret).createRun(createNamed("refused")).then(() => undefined, (e) => ConnectError.from(e).code))
      expect(yield* refused(undefined)).toBe(Code.Unauthenticated)
      expect(yield* refused(executorSecret)).toBe(Code.PermissionDenied)
      const created = yield* Effect.promise(() => runs(ciSecret).createRun(createNamed("from-ci")))
      expect(created.run?.action?.metadata?.executedBy?.principal.value).toMatchObject({ id: { subject: "ci" } })
      expect(service.output()).toContain("auth: bearer tokens required (2 static token(s))")
      expect(service.output()).toContain("(HTTPS: HTTP/2 and HTTP/1.1)")
      expect(service.output()).not.toContain(ciSecret)
      expect(service.output()).not.toContain(executorSecret)
    })), 60_000)
})
