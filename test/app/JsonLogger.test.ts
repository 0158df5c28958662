import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Logger } from "effect"
import { jsonLogger } from "../../src/app/JsonLogger.js"
import { logFailure, toConnectError } from "../../src/adapters/connect/ConnectErrors.js"
import { NotFound } from "../../src/domain/Errors.js"

/** Runs `effect` with the JSON logger, and gives back each line it wrote, parsed. */
const logged = <A, E>(effect: Effect.Effect<A, E>, showSource = false) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const capture = Logger.map(jsonLogger({ showSource }), (line) => {
      lines.push(line)
    })
    yield* Effect.exit(effect.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, capture))))
    return lines.map((line) => {
      expect(line).not.toContain("\n")
      return JSON.parse(line) as Record<string, unknown>
    })
  })

describe("logger.format: json", () => {
  it.effect("one object per line: timestamp, level, message, and the annotations", () =>
    Effect.gen(function*() {
      const [line, ...rest] = yield* logged(
        Effect.logWarning("dispatch: gave up", { attempt: 3 }).pipe(Effect.annotateLogs({ run: "p/d/r1" }))
      )
      expect(rest).toEqual([])
      expect(line).toEqual({
        timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        level: "WARN",
        message: "dispatch: gave up {\"attempt\":3}",
        run: "p/d/r1"
      })
    }))

  it.effect("a failed request's line carries its request id, and the trace and span it was logged in", () =>
    Effect.gen(function*() {
      const failure = toConnectError(Cause.fail(new NotFound({ message: "run not found" })), "req-42")
      const inSpan = Effect.withSpan(logFailure("flyteidl2.workflow.RunService/GetRun", "req-42", failure), "RunService.GetRun")
      const [line] = yield* logged(inSpan)
      expect(line).toMatchObject({
        level: "INFO",
        message: "request failed",
        requestId: "req-42",
        procedure: "flyteidl2.workflow.RunService/GetRun",
        code: "NotFound",
        cause: "run not found",
        traceId: expect.stringMatching(/^[0-9a-f]{32}$/),
        spanId: expect.stringMatching(/^[0-9a-f]{16}$/)
      })
    }))

  it.effect("no trace id outside a span; a logged cause and, with show-source, the spans' names", () =>
    Effect.gen(function*() {
      const [plain] = yield* logged(Effect.logInfo("listening"))
      expect(plain).not.toHaveProperty("traceId")
      const [failed] = yield* logged(
        Effect.logError("worker stopped", Cause.die(new Error("boom"))).pipe(Effect.withLogSpan("OutboxWorker.poll")),
        true
      )
      expect(failed?.["level"]).toBe("ERROR")
      expect(String(failed?.["cause"])).toContain("boom")
      expect(failed?.["spans"]).toEqual(["OutboxWorker.poll"])
    }))
})
