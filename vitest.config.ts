import { defineConfig } from "vitest/config"

const ci = process.env["CI"] !== undefined && process.env["CI"] !== "" && process.env["CI"] !== "false"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    // The service's own log lines are shown for failed tests only.
    silent: "passed-only",
    // In CI the JSON report lets .ci/run check that the Postgres suites ran.
    reporters: ci ? ["default", "json"] : ["default"],
    outputFile: { json: "test-results/vitest.json" }
  }
})
