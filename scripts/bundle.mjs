// The service as one ES module (`dist/runs-service.mjs`): Node then reads one file at start-up instead of
// resolving and compiling about a thousand (effect, the generated IDL, protovalidate...), which halves the
// time to ready and trims the idle heap. better-sqlite3 (a native addon) and pg's optional native binding
// stay outside and load from node_modules.
import { build } from "esbuild"

await build({
  entryPoints: ["src/app/main.ts"],
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  outfile: "dist/runs-service.mjs",
  external: ["better-sqlite3", "pg-native"],
  // CommonJS dependencies inside an ES module still call require().
  banner: { js: "import { createRequire as __runsRequire } from 'node:module'; const require = __runsRequire(import.meta.url);" },
  sourcemap: true,
  logLevel: "warning"
})
