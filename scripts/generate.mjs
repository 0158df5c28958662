// Generates gen/ from @flyteorg/flyteidl2 and from the gRPC reflection protos shipped in @grpc/reflection, and the
// schema image proto/flyteidl2.binpb for `buf curl`.
// Runs on `npm install` / `npm ci` (postinstall); safe to run again at any time.
import { execFileSync } from "node:child_process"
import { createRequire } from "node:module"
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const require = createRequire(join(root, "package.json"))
const versionOf = (pkg) => JSON.parse(readFileSync(require.resolve(`${pkg}/package.json`), "utf8")).version
const idlVersion = versionOf("@flyteorg/flyteidl2")
// What gen/ is made from; a change of any of them generates it again.
const sources = `@flyteorg/flyteidl2@${idlVersion} @grpc/reflection@${versionOf("@grpc/reflection")} ` +
  `@bufbuild/protoc-gen-es@${versionOf("@bufbuild/protoc-gen-es")}`
const genDir = join(root, "gen")
const stamp = join(genDir, ".generated-from")

let current = ""
try {
  current = readFileSync(stamp, "utf8").trim()
} catch {}
if (current === sources && !process.argv.includes("--force")) {
  console.log(`gen/ is up to date (${sources})`)
} else {
  for (const sub of ["flyteidl2", "google", "buf", "grpc"]) rmSync(join(genDir, sub), { recursive: true, force: true })
  const tsc = require.resolve("typescript/bin/tsc")
  execFileSync(process.execPath, [tsc, "-p", join(root, "proto", "tsconfig.gen.json")], { stdio: "inherit" })
  // grpc.reflection.v1 and v1alpha: @grpc/reflection ships their .proto files (no generated protobuf-es code
  // exists in a package), so buf compiles them and protoc-gen-es writes JavaScript with type declarations.
  const reflectionProtos = join(dirname(require.resolve("@grpc/reflection/package.json")), "build", "proto")
  const template = {
    version: "v2",
    plugins: [{
      local: join(root, "node_modules", ".bin", "protoc-gen-es"),
      out: genDir,
      opt: ["target=js+dts", "import_extension=js"]
    }]
  }
  execFileSync(join(root, "node_modules", ".bin", "buf"), [
    "generate",
    reflectionProtos,
    "--path",
    join(reflectionProtos, "grpc", "reflection"),
    "--template",
    JSON.stringify(template)
  ], { stdio: "inherit" })
  writeFileSync(stamp, sources + "\n")
  console.log(`generated gen/ from ${sources}`)
}

// The schema image: every file that the served services (and the dispatcher's ActionsService) need,
// dependencies first, as a FileDescriptorSet that `buf curl --schema` reads.
const { create, toBinary } = await import(pathToFileURL(require.resolve("@bufbuild/protobuf")).href)
const { FileDescriptorSetSchema } = await import(pathToFileURL(require.resolve("@bufbuild/protobuf/wkt")).href)
const load = (p) => import(pathToFileURL(join(genDir, p)).href)
const roots = [
  (await load("flyteidl2/workflow/run_service_pb.js")).file_flyteidl2_workflow_run_service,
  (await load("flyteidl2/workflow/internal_run_service_pb.js")).file_flyteidl2_workflow_internal_run_service,
  (await load("flyteidl2/actions/actions_service_pb.js")).file_flyteidl2_actions_actions_service,
  (await load("flyteidl2/project/project_service_pb.js")).file_flyteidl2_project_project_service,
  (await load("flyteidl2/task/task_service_pb.js")).file_flyteidl2_task_task_service,
  (await load("flyteidl2/cluster/service_pb.js")).file_flyteidl2_cluster_service,
  (await load("flyteidl2/dataproxy/dataproxy_service_pb.js")).file_flyteidl2_dataproxy_dataproxy_service
]
const ordered = []
const seen = new Set()
const visit = (file) => {
  if (seen.has(file.name)) return
  seen.add(file.name)
  for (const dep of file.dependencies) visit(dep)
  ordered.push(file.proto)
}
roots.forEach(visit)
mkdirSync(join(root, "proto"), { recursive: true })
const image = toBinary(FileDescriptorSetSchema, create(FileDescriptorSetSchema, { file: ordered }))
writeFileSync(join(root, "proto", "flyteidl2.binpb"), image)
console.log(`wrote proto/flyteidl2.binpb (${ordered.length} files, ${image.length} bytes)`)
