import { describe, expect, it } from "@effect/vitest"
import { Option } from "effect"
import { decodeNotification, encodeNotifications } from "../../src/adapters/pg-notify/NotifyPayload.js"
import type { Change } from "../../src/ports/ChangeFeed.js"

const change = (i: number): Change => ({
  action: { run: { project: "flytesnacks", domain: "development", name: `run-${i}` }, name: `action-${"é".repeat(i % 40)}-${i}` },
  kind: (["created", "updated", "events", "deleted"] as const)[i % 4]!
})

describe("NotifyPayload", () => {
  it("packs changes into as few payloads as fit under 8,000 bytes, in order, keys only", () => {
    const changes = Array.from({ length: 500 }, (_, i) => change(i))
    const payloads = encodeNotifications("origin-1", changes)
    expect(payloads.length).toBeGreaterThan(1)
    for (const payload of payloads) expect(Buffer.byteLength(payload)).toBeLessThan(8000)
    const decoded = payloads.map((payload) => Option.getOrThrow(decodeNotification(payload)))
    expect(decoded.every((notification) => notification.origin === "origin-1")).toBe(true)
    expect(decoded.flatMap((notification) => notification.changes)).toEqual(changes)
    expect(encodeNotifications("origin-1", [])).toEqual([])
  })

  it("ignores what it did not write", () => {
    expect(Option.isNone(decodeNotification("not json"))).toBe(true)
    expect(Option.isNone(decodeNotification(JSON.stringify({ o: "x", c: [["p", "d", "r", "a", "deleted"]] })))).toBe(true)
  })
})
