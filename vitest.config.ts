import { availableParallelism } from "node:os"
import { defineConfig } from "vitest/config"

const ci = process.env["CI"] !== undefined && process.env["CI"] !== "" && process.env["CI"] !== "false"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    // Most files wait on sockets, child processes and Postgres more than on the CPU: two at a time even on a
    // 2-core machine, where vitest would otherwise run one.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    minWorkers: 1,
    // A worker keeps the modules it imported (Effect, protobuf-es, the generated IDL) from one file to the next
    // instead of importing them again for each. The tests share no module state they depend on: every file
    // builds its own layers, servers and databases.
    isolate: false,
    // The service's own log lines are shown for failed tests only.
    silent: "passed-only",
    // In CI the JSON report lets .ci/run check that the Postgres suites ran.
    reporters: ci ? ["default", "json"] : ["default"],
    outputFile: { json: "test-results/vitest.json" }
  }
})
