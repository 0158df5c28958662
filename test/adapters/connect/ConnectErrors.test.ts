import { Code } from "@connectrpc/connect"
import { describe, expect, it } from "@effect/vitest"
import { Cause } from "effect"
import { toConnectError } from "../../../src/adapters/connect/ConnectErrors.js"
import { InvalidArgument } from "../../../src/domain/Errors.js"

describe("toConnectError", () => {
  it("answers a defect Internal with only the request id, and logs what the failed statement's driver said", () => {
    const driverError = Object.assign(new Error("value out of range"), { code: "22003" })
    const failure = toConnectError(Cause.die(Object.assign(new Error("Failed to execute statement"), { cause: driverError })), "req-1")
    expect(failure.error.code).toBe(Code.Internal)
    expect(failure.error.rawMessage).toBe("internal error (request id req-1)")
    expect(failure.logDetail).toContain("caused by: value out of range (22003)")
  })

  it("clips a message that quotes megabytes of the request, in the answer and in the log", () => {
    const failure = toConnectError(Cause.fail(new InvalidArgument({ message: `bad value ${"x".repeat(8_000_000)}` })), "req-2")
    expect(failure.error.code).toBe(Code.InvalidArgument)
    expect(failure.error.rawMessage.length).toBeLessThan(1_100)
    expect(failure.error.rawMessage).toMatch(/more characters\)$/)
    expect(failure.logDetail.length).toBeLessThan(4_100)
  })
})
