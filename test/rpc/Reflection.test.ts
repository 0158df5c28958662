import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { join } from "node:path"
import * as MemoryRunStore from "../../src/adapters/memory/MemoryRunStore.js"
import { baseUrl, layerTestServer } from "../support/TestApp.js"

const buf = join(process.cwd(), "node_modules", ".bin", "buf")

/** `buf curl` with no schema: it learns the services from the server's reflection. */
const bufCurl = (...args: Array<string>) =>
  Effect.async<{ readonly code: number; readonly stdout: string; readonly stderr: string }>((resume) => {
    execFile(buf, ["curl", "--http2-prior-knowledge", ...args], (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1
      resume(Effect.succeed({ code, stdout, stderr }))
    })
  })

describe("gRPC server reflection through buf curl", () => {
  it.layer(layerTestServer(MemoryRunStore.layer))("no schema file", (it) => {
    it.effect("lists the served services and their methods", () =>
      Effect.gen(function*() {
        const url = yield* baseUrl
        const services = yield* bufCurl("--list-services", url)
        expect(services.stderr).toBe("")
        expect(services.stdout.trim().split("\n")).toEqual([
          "flyteidl2.cluster.ClusterService",
          "flyteidl2.dataproxy.DataProxyService",
          "flyteidl2.project.ProjectService",
          "flyteidl2.task.TaskService",
          "flyteidl2.workflow.InternalRunService",
          "flyteidl2.workflow.RunService",
          "grpc.reflection.v1.ServerReflection",
          "grpc.reflection.v1alpha.ServerReflection"
        ])
        const methods = yield* bufCurl("--list-methods", url)
        expect(methods.stdout).toContain("flyteidl2.workflow.RunService/WatchRunDetails\n")
        expect(methods.stdout).toContain("flyteidl2.workflow.InternalRunService/RecordActionEvents\n")
      }))

    it.effect("calls methods in every protocol, by either reflection version", () =>
      Effect.gen(function*() {
        const url = yield* baseUrl
        const runId = { project: "p", domain: "d", name: "reflected" }
        const created = yield* bufCurl(
          "--protocol",
          "grpc",
          `${url}/flyteidl2.workflow.RunService/CreateRun`,
          "-d",
          JSON.stringify({
            runId,
            taskSpec: {
              taskTemplate: { id: { resourceType: "TASK", project: "p", domain: "d", name: "t", version: "v1" }, type: "python" }
            }
          })
        )
        expect(created.stderr).toBe("")
        expect(JSON.parse(created.stdout).run.action.id.run.name).toBe("reflected")
        for (const [protocol, reflectProtocol] of [["connect", "grpc-v1"], ["grpcweb", "grpc-v1alpha"]]) {
          const details = yield* bufCurl(
            "--protocol",
            protocol,
            "--reflect-protocol",
            reflectProtocol,
            `${url}/flyteidl2.workflow.RunService/GetRunDetails`,
            "-d",
            JSON.stringify({ runId })
          )
          expect(details.stderr, protocol).toBe("")
          expect(JSON.parse(details.stdout).details.action.status.phase, protocol).toBe("ACTION_PHASE_QUEUED")
        }
        const invalid = yield* bufCurl(`${url}/flyteidl2.workflow.RunService/GetRunDetails`, "-d", "{}")
        expect(invalid.code).not.toBe(0)
        expect(invalid.stdout + invalid.stderr).toContain("run_id")
      }))
  })
})
