// Reads vitest's JSON report: prints the closing count line and fails when a backend's suites did not run.
import { readFileSync } from "node:fs"

const report = JSON.parse(readFileSync(process.argv[2] ?? "test-results/vitest.json", "utf8"))
const tests = report.testResults.flatMap((file) => file.assertionResults)
const count = (status, filter = () => true) => tests.filter((t) => t.status === status && filter(t)).length
const named = (backend) => (t) => t.fullName.includes(`[${backend}]`)

let ok = report.success
for (const backend of ["memory", "sqlite", "postgres"]) {
  const passed = count("passed", named(backend))
  console.log(`${backend}: ${passed} passed, ${count("failed", named(backend))} failed, ${count("skipped", named(backend)) + count("pending", named(backend))} skipped`)
  if (passed === 0) {
    console.log(`no ${backend} test passed: the ${backend} suites did not run`)
    ok = false
  }
}
console.log(`${count("passed")} passed, ${count("failed")} failed, ${count("skipped") + count("pending") + count("todo")} skipped`)
process.exit(ok ? 0 : 1)
