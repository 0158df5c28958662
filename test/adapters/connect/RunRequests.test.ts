import { clone, create, equals } from "@bufbuild/protobuf"
import { describe, expect, it } from "@effect/vitest"
import { CreateRunRequestSchema } from "#gen/flyteidl2/workflow/run_service_pb.js"
import { fingerprintOf } from "../../../src/adapters/connect/RunRequests.js"
import { createNamed, project, taskSpec } from "../../support/RunRequests.js"

/** A request with an org in the run's id and in its task's id. */
const withOrgs = (org: string) => {
  const spec = taskSpec()
  spec.taskTemplate!.id!.org = org
  return createNamed("fp-run", {
    id: { case: "runId", value: { org, project: project.name, domain: project.domain, name: "fp-run" } },
    task: { case: "taskSpec", value: spec },
    runSpec: { labels: { values: { team: "ml" } }, cluster: "c1" }
  })
}

describe("fingerprintOf", () => {
  it("is the digest the stored runs carry: a request's fingerprint does not change from one version to the next", () => {
    // Computed by the earlier implementation, which cleared the orgs in a copy of the request.
    expect(fingerprintOf(CreateRunRequestSchema, withOrgs(""))).toBe("d234c678c1fe9ec48009c59624a35feda04e86a8f38c7627ff6342d3641a08fb")
  })

  it("writes keys that JSON escapes as JSON does", () => {
    const labels = { "say \"hi\"": "1", "back\\slash": "2", "ünïcode": "3", "tab\there": "4", "team.name-x_y@z$": "5" }
    const request = createNamed("fp-keys", { task: { case: "taskSpec", value: taskSpec() }, runSpec: { labels: { values: labels }, cluster: "c1" } })
    // Computed by the earlier implementation, which wrote every key with JSON.stringify.
    expect(fingerprintOf(CreateRunRequestSchema, request)).toBe("e614f33a0cd2c24d564ba7982df37eb5e7dd42da32836eb97fcc47464311f02b")
  })

  it("leaves the orgs out, and the request as it was", () => {
    const request = withOrgs("acme")
    const before = clone(CreateRunRequestSchema, request)
    expect(fingerprintOf(CreateRunRequestSchema, request)).toBe(fingerprintOf(CreateRunRequestSchema, withOrgs("")))
    expect(equals(CreateRunRequestSchema, request, before)).toBe(true)
    expect(request.id.case === "runId" && request.id.value.org).toBe("acme")
    expect(request.task.case === "taskSpec" && request.task.value.taskTemplate?.id?.org).toBe("acme")
  })

  it("tells requests apart by anything but their orgs", () => {
    const other = withOrgs("")
    other.source = 3
    expect(fingerprintOf(CreateRunRequestSchema, other)).not.toBe(fingerprintOf(CreateRunRequestSchema, withOrgs("")))
    expect(fingerprintOf(CreateRunRequestSchema, create(CreateRunRequestSchema))).toMatch(/^[0-9a-f]{64}$/)
  })
})
