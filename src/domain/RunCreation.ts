import { Clock, Duration, Effect, Option } from "effect"
import type { BlobStore, StagedBlob } from "../ports/BlobStore.js"
import type { ChangeFeed } from "../ports/ChangeFeed.js"
import type { Payloads } from "../ports/Payloads.js"
import { RunExists, type RunStore } from "../ports/RunStore.js"
import { withSpanWhenTraced } from "../ports/Spans.js"
import { type CreateRunRequest, offloadedInputsUri, runLocations } from "./CreateRun.js"
import { AlreadyExists, InvalidArgument, NotFound, Unimplemented } from "./Errors.js"
import { generateRunName, type RunKey, rootActionName, runKeyText, runNameProblem } from "./Ids.js"
import { ActionPhase, ActionType } from "./Phase.js"
import type { RunView, TaskRecord } from "./Records.js"
import type { RunsSettings } from "./RunsSettings.js"

/** A request with the same `x-request-id` within this window returns the run it created. */
export const requestIdWindow = Duration.hours(24)

const runKeyOf = (request: CreateRunRequest) =>
  Effect.gen(function*() {
    if (request.id.kind === "project") {
      return { project: request.id.project, domain: request.id.domain, name: yield* generateRunName }
    }
    const problem = runNameProblem(request.id.name)
    if (problem !== undefined) {
      return yield* new InvalidArgument({ message: `run_id.name: invalid run name "${request.id.name}": ${problem}` })
    }
    return { project: request.id.project, domain: request.id.domain, name: request.id.name }
  })

/** The stored run when it came from the same request (same fingerprint); `AlreadyExists` otherwise. */
const sameRequestOrConflict = (existing: RunView, request: CreateRunRequest) =>
  existing.run.fingerprint === request.fingerprint
    ? Effect.succeed(existing)
    : Effect.fail(
      new AlreadyExists({
        message: `run ${runKeyText(existing.run.key)} already exists (created by a different request)`
      })
    )

const resolveTaskSpec = (store: RunStore["Type"], task: Exclude<CreateRunRequest["task"], { kind: "trigger" }>) =>
  task.kind === "spec"
    ? Effect.succeed(task.spec)
    : store.getTask(task.key).pipe(
      Effect.flatMap(Option.match({
        onNone: () =>
          Effect.fail(
            new NotFound({
              message: `task ${task.key.project}/${task.key.domain}/${task.key.name} version ${task.key.version} not found`
            })
          ),
        onSome: (record) => Effect.succeed(record.spec)
      }))
    )

/** What CreateRun works with, given once (a service provided per call costs the runtime a region of its own). */
export interface RunCreationDeps {
  readonly store: RunStore["Type"]
  readonly payloads: Payloads["Type"]
  readonly blobs: BlobStore["Type"]
  readonly settings: RunsSettings["Type"]
  readonly feed: ChangeFeed["Type"]
}

/**
 * CreateRun (SPEC 5): name the run, resolve its task, write its inputs, then store the run and its root
 * action `a0` in one transaction, then tell watchers. The same request again returns the run it created.
 * Its span, `Runs.create`, is made only when spans are recorded: every CreateRun passes here, and a span that
 * records nothing would still cost each call a region of its own.
 */
export const makeCreateRun = ({ blobs, feed, payloads, settings, store }: RunCreationDeps) =>
  Effect.fnUntraced(function*(request: CreateRunRequest) {
    const { storagePrefix } = settings
    const now = new Date(yield* Clock.currentTimeMillis)

    if (request.task.kind === "trigger") {
      return yield* new Unimplemented({
        message: `trigger_name: triggers are not served by this service; create the run with task_spec or task_id`
      })
    }
    if (request.id.kind === "project" && request.requestId !== undefined) {
      const since = new Date(now.getTime() - Duration.toMillis(requestIdWindow))
      const earlier = yield* store.findRunByRequestId(request.requestId, since)
      if (Option.isSome(earlier)) return earlier.value
    }

    // A name that is taken shows at the insert (RunExists), which reads the run only then: a new name, the usual
    // case, costs no read first.
    const key: RunKey = yield* runKeyOf(request)
    const taskSpec = yield* resolveTaskSpec(store, request.task)
    const description = yield* payloads.describeTaskSpec(taskSpec)
    const runSpec = yield* payloads.effectiveRunSpec(request.runSpec, storagePrefix)
    const locations = runLocations(storagePrefix, key)
    const inputUri = request.inputs.kind === "offloaded"
      ? offloadedInputsUri(request.inputs.uri)
      : locations.inlineInputsUri

    const org = request.id.org
    const view: RunView = {
      run: {
        key,
        org,
        rootActionName,
        trigger: undefined,
        runSpec: runSpec.spec,
        createdByPrincipal: request.createdBy,
        createdByServiceAccount: undefined,
        cluster: runSpec.cluster,
        fingerprint: request.fingerprint,
        requestId: request.requestId,
        createdAt: now,
        updatedAt: now
      },
      root: {
        key: { run: key, name: rootActionName },
        org,
        parent: undefined,
        type: ActionType.TASK,
        phase: ActionPhase.QUEUED,
        attempts: 1,
        cacheStatus: 0,
        group: undefined,
        task: description.task,
        taskType: description.taskType,
        shortName: description.shortName,
        functionName: description.task.name,
        environmentName: description.environmentName,
        source: request.source,
        triggerName: undefined,
        createdBy: request.createdBy,
        spec: { kind: "task", payload: taskSpec },
        metadata: undefined,
        inputUri,
        runOutputBase: locations.runOutputBase,
        outputsUri: undefined,
        startedAt: now,
        endedAt: undefined,
        abort: undefined,
        errorInfo: undefined,
        createdAt: now,
        updatedAt: now
      }
    }
    const task: TaskRecord | undefined = request.task.kind === "spec"
      ? { key: description.task, org: description.task.org, spec: taskSpec, createdAt: now }
      : undefined
    const stored = (inputs: StagedBlob | undefined) =>
      store.createRun({ view, task, beforeCommit: inputs?.publish }).pipe(
        Effect.tap((created) => feed.publish([{ action: created.root.key, kind: "created" }])),
        Effect.catchIf(
          (error): error is RunExists => error instanceof RunExists,
          (error) => sameRequestOrConflict(error.existing, request)
        )
      )
    if (request.inputs.kind === "offloaded") return yield* stored(undefined)

    // The inputs file is written beside its place and moved there inside the run's transaction, once the name is
    // known to be free: of two requests racing for a name, the one that creates the run is the one whose inputs
    // are kept. A file that was not moved is dropped.
    const withDefaults = yield* payloads.inputsWithDefaults(
      request.inputs.kind === "inline" ? request.inputs.inputs : undefined,
      taskSpec
    )
    return yield* Effect.acquireUseRelease(blobs.stage(inputUri, withDefaults.binary), stored, (staged) => staged.discard)
  }, withSpanWhenTraced("Runs.create"))
