import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Encoding } from "effect"
import {
  actionListFields,
  encodeToken,
  type FilterInput,
  type ListRequestInput,
  parseListRequest,
  parseTime,
  runListFields,
  type SortInput
} from "../../src/domain/ListRequest.js"

const request = (overrides: Partial<ListRequestInput> = {}): ListRequestInput => ({
  limit: 0,
  token: "",
  sortBy: undefined,
  sortByFields: [],
  filters: [],
  rawFilters: [],
  ...overrides
})

const runs = { allowedFields: runListFields }
const actions = { allowedFields: actionListFields }

const filter = (field: string, fn: number, ...values: ReadonlyArray<string>): FilterInput => ({ function: fn, field, values })

const [EQUAL, GREATER_THAN_OR_EQUAL, LESS_THAN, LESS_THAN_OR_EQUAL, CONTAINS, VALUE_IN] = [0, 3, 4, 5, 6, 7]
const [ENDS_WITH, NOT_ENDS_WITH, CONTAINS_CASE_INSENSITIVE] = [12, 13, 14]

/** The InvalidArgument message the request fails with. */
const rejection = (input: ListRequestInput, options = runs) =>
  parseListRequest(input, options).pipe(
    Effect.flip,
    Effect.map((error) => {
      expect(error._tag).toBe("InvalidArgument")
      return error.message
    })
  )

const rejectFilter = (...filters: ReadonlyArray<FilterInput>) => rejection(request({ filters }))

/** The full order as "field DIRECTION" strings. */
const orderOf = (input: ListRequestInput, options = runs) =>
  parseListRequest(input, options).pipe(
    Effect.map((query) => query.order.map((key) => `${key.field} ${key.direction}`))
  )

const valuesOf = (filters: ReadonlyArray<FilterInput>, options = runs) =>
  parseListRequest(request({ filters }), options).pipe(Effect.map((query) => query.filters.map((f) => f.values)))

const utc = (text: string) => new Date(text).getTime()

const newest = ["created_at DESC", "project DESC", "domain DESC", "run_name DESC", "name DESC"]

describe("parseListRequest", () => {
  it.effect("parses the Python SDK's request", () =>
    Effect.gen(function*() {
      const query = yield* parseListRequest(
        request({
          limit: 100,
          sortBy: { key: "created_at", direction: "ASC" },
          filters: [
            filter("phase", EQUAL, "4"),
            filter("created_at", GREATER_THAN_OR_EQUAL, "2025-01-02T03:04:05.123456+00:00"),
            filter("updated_at", LESS_THAN, "2025-01-03T00:00:00+00:00")
          ]
        }),
        runs
      )
      expect(query).toEqual({
        limit: 100,
        order: ["created_at", "project", "domain", "run_name", "name"].map((field) => ({ field, direction: "ASC" })),
        filters: [
          { field: "phase", fn: "EQUAL", values: [4] },
          { field: "created_at", fn: "GREATER_THAN_OR_EQUAL", values: [utc("2025-01-02T03:04:05.123Z")] },
          { field: "updated_at", fn: "LESS_THAN", values: [utc("2025-01-03T00:00:00Z")] }
        ],
        after: undefined
      })
    }))

  it.effect("parses the web UI's request", () =>
    Effect.gen(function*() {
      const input = request({
        limit: 50,
        sortBy: { key: "created_at", direction: "DESC" },
        filters: [
          filter("task_name", CONTAINS_CASE_INSENSITIVE, "Train"),
          filter("created_by", VALUE_IN, "alice", "bob"),
          filter("phase", VALUE_IN, "1", "4"),
          filter("created_at", LESS_THAN_OR_EQUAL, "2025-01-02T03:04:05.000Z")
        ]
      })
      expect(yield* orderOf(input)).toEqual(newest)
      expect((yield* parseListRequest(input, runs)).filters).toEqual([
        { field: "task_name", fn: "CONTAINS_CASE_INSENSITIVE", values: ["Train"] },
        { field: "created_by", fn: "VALUE_IN", values: ["alice", "bob"] },
        { field: "phase", fn: "VALUE_IN", values: [1, 4] },
        { field: "created_at", fn: "LESS_THAN_OR_EQUAL", values: [utc("2025-01-02T03:04:05Z")] }
      ])
    }))

  it.effect("limit: 0 means 50, 200 is the most", () =>
    Effect.gen(function*() {
      for (const [limit, expected] of [[0, 50], [1, 1], [200, 200]] as const) {
        expect((yield* parseListRequest(request({ limit }), runs)).limit).toBe(expected)
      }
      expect(yield* rejection(request({ limit: 201 }))).toBe("invalid limit 201: exceeds maximum of 200")
      expect(yield* rejection(request({ limit: -1 }))).toContain("invalid limit -1")
    }))

  describe("sort", () => {
    it.effect("defaults to newest first when no sort, or a sort_by with an empty key, is given", () =>
      Effect.gen(function*() {
        expect(yield* orderOf(request())).toEqual(newest)
        expect(yield* orderOf(request({ sortBy: { key: "", direction: "ASC" } }))).toEqual(newest)
      }))

    it.effect("prefers sort_by_fields over sort_by; tie-breakers take the first key's direction", () =>
      Effect.gen(function*() {
        const sortByFields: ReadonlyArray<SortInput> = [
          { key: "phase", direction: "ASC" },
          { key: "domain", direction: "DESC" },
          { key: "phase", direction: "DESC" }
        ]
        expect(yield* orderOf(request({ sortBy: { key: "ended_at", direction: "DESC" }, sortByFields }))).toEqual(
          ["phase ASC", "domain DESC", "created_at ASC", "project ASC", "run_name ASC", "name ASC"]
        )
      }))

    it.effect("does not repeat created_at when it is a requested key", () =>
      Effect.gen(function*() {
        const sortByFields: ReadonlyArray<SortInput> = [
          { key: "name", direction: "ASC" },
          { key: "created_at", direction: "DESC" }
        ]
        expect(yield* orderOf(request({ sortByFields }), actions)).toEqual(
          ["name ASC", "created_at DESC", "project ASC", "domain ASC", "run_name ASC"]
        )
      }))

    it.effect("refuses an unknown or disallowed key, naming it", () =>
      Effect.gen(function*() {
        expect(yield* rejection(request({ sortBy: { key: "created", direction: "ASC" } }))).toMatch(
          /^invalid sort field "created": expected one of project, domain, /
        )
        const byParent = request({ sortByFields: [{ key: "parent_name", direction: "ASC" }] })
        expect(yield* rejection(byParent)).toContain(`invalid sort field "parent_name"`)
        expect((yield* orderOf(byParent, actions))[0]).toBe("parent_name ASC")
      }))
  })

  describe("filters", () => {
    it.effect("refuse an unknown or disallowed field, naming it", () =>
      Effect.gen(function*() {
        expect(yield* rejectFilter(filter("created_by_subject", EQUAL, "a"))).toMatch(
          /^invalid filter field "created_by_subject": expected one of /
        )
        expect(yield* rejectFilter(filter("constructor", EQUAL, "a"))).toContain(`invalid filter field "constructor"`)
        expect(yield* rejectFilter(filter("parent_name", EQUAL, "a0"))).toContain(`invalid filter field "parent_name"`)
        expect(yield* valuesOf([filter("parent_name", EQUAL, "a0")], actions)).toEqual([["a0"]])
      }))

    it.effect("refuse a function 2.0.16 does not have, and accept every one it has", () =>
      Effect.gen(function*() {
        for (const fn of [8, 9, 11, 15, -1]) {
          expect(yield* rejectFilter(filter("phase", fn, "4"))).toBe(`unsupported filter function ${fn} on field "phase"`)
        }
        const numbers = [0, 1, 2, 3, 4, 5, 6, 7, 12, 13, 14]
        const query = yield* parseListRequest(request({ filters: numbers.map((fn) => filter("task_name", fn, "x")) }), runs)
        expect(query.filters.map((f) => f.fn)).toEqual([
          "EQUAL",
          "NOT_EQUAL",
          "GREATER_THAN",
          "GREATER_THAN_OR_EQUAL",
          "LESS_THAN",
          "LESS_THAN_OR_EQUAL",
          "CONTAINS",
          "VALUE_IN",
          "ENDS_WITH",
          "NOT_ENDS_WITH",
          "CONTAINS_CASE_INSENSITIVE"
        ])
      }))

    it.effect("need values: one for every function but VALUE_IN, which takes one or more", () =>
      Effect.gen(function*() {
        expect(yield* rejectFilter(filter("phase", VALUE_IN))).toBe(`filter VALUE_IN on field "phase" has no values`)
        expect(yield* rejectFilter(filter("phase", EQUAL, "1", "2"))).toBe(
          `filter EQUAL on field "phase" takes exactly one value, got 2`
        )
        expect(yield* valuesOf([filter("phase", VALUE_IN, "6")])).toEqual([[6]])
      }))

    it.effect("allow text functions only on text fields", () =>
      Effect.gen(function*() {
        for (const fn of [CONTAINS, CONTAINS_CASE_INSENSITIVE, ENDS_WITH, NOT_ENDS_WITH]) {
          expect(yield* rejectFilter(filter("created_at", fn, "2025"))).toMatch(
            /^filter [A-Z_]+ works only on text fields, not on "created_at"$/
          )
        }
        expect(yield* valuesOf([filter("run_name", ENDS_WITH, "-x")])).toEqual([["-x"]])
      }))

    it.effect("read phases as numbers or names in any case and form", () =>
      Effect.gen(function*() {
        const names = ["0", "9", "ACTION_PHASE_RUNNING", "PHASE_SUCCEEDED", "failed", "Timed_Out"]
        expect(yield* valuesOf([filter("phase", VALUE_IN, ...names)])).toEqual([[0, 9, 4, 5, 6, 8]])
        for (const bad of ["10", "abc", "", "-1", "4.0", "PHASE_PHASE_RUNNING"]) {
          expect(yield* rejectFilter(filter("phase", EQUAL, bad))).toBe(
            `invalid value ${JSON.stringify(bad)} for field "phase": expected a phase number 0-9 or a name like ` +
              "RUNNING, PHASE_RUNNING or ACTION_PHASE_RUNNING"
          )
        }
      }))

    it.effect("read action types, run sources and durations", () =>
      Effect.gen(function*() {
        const values = yield* valuesOf([
          filter("action_type", VALUE_IN, "1", "ACTION_TYPE_TRACE", "condition"),
          filter("run_source", VALUE_IN, "0", "RUN_SOURCE_CLI", "web", "SCHEDULE_TRIGGER"),
          filter("duration_ms", GREATER_THAN_OR_EQUAL, "1500")
        ], actions)
        expect(values).toEqual([[1, 2, 3], [0, 2, 1, 3], [1500]])
        const bad = [
          filter("action_type", EQUAL, "4"),
          filter("run_source", EQUAL, "RUN_SOURCE_API"),
          ...["-5", "1.5", "1e3", "99999999999999999999"].map((text) => filter("duration_ms", EQUAL, text))
        ]
        for (const f of bad) {
          expect(yield* rejectFilter(f)).toContain(`invalid value ${JSON.stringify(f.values[0])} for field "${f.field}"`)
        }
      }))

    it.effect("read times as epoch milliseconds and refuse anything that is not RFC 3339", () =>
      Effect.gen(function*() {
        expect(yield* valuesOf([filter("ended_at", VALUE_IN, "2025-01-02T03:04:05Z", "2025-01-02T03:04:05.9-05:00")]))
          .toEqual([[utc("2025-01-02T03:04:05Z"), utc("2025-01-02T08:04:05.900Z")]])
        for (const bad of ["2025-01-02", "yesterday", "2025-01-02T03:04:05", "1735787045000"]) {
          expect(yield* rejectFilter(filter("created_at", GREATER_THAN_OR_EQUAL, bad))).toBe(
            `invalid value ${JSON.stringify(bad)} for field "created_at": expected an RFC 3339 time like ` +
              "2025-01-02T03:04:05Z or 2025-01-02T03:04:05.123456+00:00"
          )
        }
      }))

    it.effect("refuse raw_filters", () =>
      Effect.gen(function*() {
        expect(yield* rejection(request({ rawFilters: ["phase = 4"] }))).toBe("raw_filters are not supported")
      }))
  })

  describe("parseTime", () => {
    it("truncates any fraction to the millisecond", () => {
      const base = Date.UTC(2025, 0, 2, 3, 4, 5)
      expect(parseTime("2025-01-02T03:04:05Z")).toBe(base)
      expect(parseTime("2025-01-02T03:04:05.1Z")).toBe(base + 100)
      expect(parseTime("2025-01-02T03:04:05.123Z")).toBe(base + 123)
      expect(parseTime("2025-01-02T03:04:05.123999+00:00")).toBe(base + 123)
      expect(parseTime("2025-01-02T03:04:05.999999999z")).toBe(base + 999)
      expect(parseTime("1969-12-31T23:59:59.9999Z")).toBe(-1)
    })

    it("applies numeric offsets", () => {
      const utcTime = parseTime("2025-01-02T03:04:05Z")
      expect(parseTime("2025-01-02T03:04:05+00:00")).toBe(utcTime)
      expect(parseTime("2025-01-01T22:04:05-05:00")).toBe(utcTime)
      expect(parseTime("2025-01-02T08:34:05+05:30")).toBe(utcTime)
    })

    it("reads early years literally and checks calendar ranges", () => {
      expect(parseTime("0050-01-01T00:00:00Z")).toBe(new Date("0050-01-01T00:00:00Z").getTime())
      expect(parseTime("2024-02-29T00:00:00Z")).toBe(Date.UTC(2024, 1, 29))
      const bad = [
        "2025-02-29T00:00:00Z",
        "2025-13-01T00:00:00Z",
        "2025-01-32T00:00:00Z",
        "2025-01-01T24:00:00Z",
        "2025-01-01T00:60:00Z",
        "2025-01-01T00:00:00+24:00",
        "2025-01-01T00:00:00+0000",
        "2025-01-01T00:00:00.Z",
        " 2025-01-01T00:00:00Z"
      ]
      expect(bad.map((text) => parseTime(text))).toEqual(bad.map(() => undefined))
    })
  })

  describe("token", () => {
    const sdk = request({ limit: 10, sortBy: { key: "created_at", direction: "ASC" }, filters: [filter("phase", EQUAL, "4")] })
    const cursor = [utc("2025-01-02T03:04:05Z"), "p", "d", "r1", "a0"]
    const tokenFor = (input: ListRequestInput) =>
      parseListRequest(input, runs).pipe(Effect.map((query) => encodeToken(query, cursor)))

    it.effect("round-trips the cursor of the last row", () =>
      Effect.gen(function*() {
        const token = yield* tokenFor(sdk)
        expect(token).toMatch(/^[A-Za-z0-9_-]+$/)
        expect((yield* parseListRequest({ ...sdk, token }, runs)).after).toEqual(cursor)
      }))

    it.effect("still fits when the same filter is spelled differently or the limit changes", () =>
      Effect.gen(function*() {
        const token = yield* tokenFor(sdk)
        const respelled = { ...sdk, limit: 20, filters: [filter("phase", EQUAL, "PHASE_RUNNING")], token }
        expect((yield* parseListRequest(respelled, runs)).after).toEqual(cursor)
      }))

    it.effect("refuses a token made for another sort or other filters", () =>
      Effect.gen(function*() {
        const token = yield* tokenFor(sdk)
        const changed: ReadonlyArray<Partial<ListRequestInput>> = [
          { sortBy: { key: "created_at", direction: "DESC" } },
          { sortBy: undefined },
          { filters: [filter("phase", EQUAL, "5")] },
          { filters: [] }
        ]
        for (const change of changed) {
          expect(yield* rejection({ ...sdk, ...change, token })).toBe("invalid token")
        }
      }))

    it.effect("refuses tampered and malformed tokens", () =>
      Effect.gen(function*() {
        const token = yield* tokenFor(sdk)
        const json = JSON.parse(Either.getOrThrow(Encoding.decodeBase64UrlString(token)))
        const reencode = (value: unknown) => Encoding.encodeBase64Url(JSON.stringify(value))
        const tampered = [
          token.slice(0, -3),
          `${token}!`,
          token.replace(/^./, (c) => (c === "e" ? "f" : "e")),
          "10",
          "not a token",
          reencode({ ...json, v: 2 }),
          reencode({ ...json, o: `${json.o}x` }),
          reencode({ ...json, c: cursor.slice(1) }),
          reencode({ ...json, c: ["2025", "p", "d", "r1", "a0"] }),
          reencode({ ...json, c: [1.5, "p", "d", "r1", "a0"] }),
          reencode({ ...json, c: [1, 2, "d", "r1", "a0"] }),
          reencode([json]),
          reencode(null)
        ]
        for (const bad of tampered) {
          expect(yield* rejection({ ...sdk, token: bad })).toBe("invalid token")
        }
      }))

    it.effect("is checked after limit, sort and filters", () =>
      Effect.gen(function*() {
        const token = "garbage"
        const sortBy: SortInput = { key: "x", direction: "ASC" }
        const filters = [filter("y", EQUAL, "1")]
        expect(yield* rejection(request({ limit: 500, sortBy, filters, token }))).toContain("invalid limit")
        expect(yield* rejection(request({ sortBy, filters, token }))).toContain("invalid sort field")
        expect(yield* rejection(request({ filters, token }))).toContain("invalid filter field")
        expect(yield* rejection(request({ token }))).toBe("invalid token")
      }))
  })
})
