import { describe, expect, it } from "@effect/vitest"
import { latestPerPart } from "../../src/domain/WatchRules.js"
import { type Part, parts } from "../support/Parts.js"

describe("latestPerPart", () => {
  it("hands each message over as it came while no more than `hold` wait", () => {
    const pending = latestPerPart<Part>((part) => part.name, { hold: 2, limit: 10, max: 100 })
    const one = parts(["a0", 0], ["t1", 1])
    const two = parts(["a0", 0], ["t2", 1])
    expect([pending.add(one), pending.add(two)]).toEqual([true, true])
    // The same objects: a message shared by the hub's watchers is built and encoded once.
    expect(pending.take()).toBe(one)
    expect(pending.take()).toBe(two)
    expect(pending.take()).toBeUndefined()
    expect(pending.isEmpty()).toBe(true)
  })

  it("past `hold`, merges what waits: each part once, its newest state, where it first came, `max` at a time", () => {
    const pending = latestPerPart<Part>((part) => part.name, { hold: 1, limit: 10, max: 3 })
    pending.add(parts(["a0", 0], ["t1", 1]))
    pending.add(parts(["a0", 1], ["t2", 1]))
    pending.add(parts(["a0", 2], ["t1", 3], ["t3", 1]))
    expect(pending.take()).toEqual(parts(["a0", 2], ["t1", 3], ["t2", 1]))
    // A message that comes meanwhile is merged behind what still waits.
    pending.add(parts(["a0", 3], ["t4", 1]))
    expect(pending.take()).toEqual(parts(["t3", 1], ["a0", 3], ["t4", 1]))
    expect(pending.isEmpty()).toBe(true)
  })

  it("bounds what it holds by the number of parts, not of messages; past `limit` parts `add` is false", () => {
    const pending = latestPerPart<Part>((part) => part.name, { hold: 1, limit: 3, max: 100 })
    for (let state = 0; state < 1000; state++) expect(pending.add(parts(["a0", state], ["t1", state]))).toBe(true)
    expect(pending.take()).toEqual(parts(["a0", 999], ["t1", 999]))
    expect(pending.add(parts(["a0", 0], ["t1", 0]))).toBe(true)
    expect(pending.add(parts(["a0", 0], ["t2", 0], ["t3", 0]))).toBe(false)
    pending.clear()
    expect(pending.isEmpty()).toBe(true)
  })
})

