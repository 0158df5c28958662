import { Clock, Context, Effect, Layer, Option } from "effect"
import { BlobStore, type BlobFailure, type BlobNotFound, type UnreadableBlob } from "../ports/BlobStore.js"
import { ChangeFeed } from "../ports/ChangeFeed.js"
import { Payloads } from "../ports/Payloads.js"
import { RunStore, type StoreUnavailable } from "../ports/RunStore.js"
import { abortReason } from "./Abort.js"
import type { CreateRunRequest } from "./CreateRun.js"
import { type AlreadyExists, type InvalidArgument, NotFound, type Unimplemented } from "./Errors.js"
import { type ActionKey, actionKeyText, type RunKey, rootActionName, runKeyText } from "./Ids.js"
import type { RunScope } from "./ListQuery.js"
import { actionListFields, type ListRequestInput, parseListRequest, runListFields } from "./ListRequest.js"
import { encodeToken } from "./ListToken.js"
import type { Payload } from "./Payload.js"
import { ActionPhase } from "./Phase.js"
import type { ActionRecord, AttemptRecord, RunView } from "./Records.js"
import { makeCreateRun } from "./RunCreation.js"
import { RunsSettings } from "./RunsSettings.js"
import { latestAttempt } from "./Status.js"

export interface ActionDetailsView {
  readonly action: ActionRecord
  readonly attempts: ReadonlyArray<AttemptRecord>
}

export interface RunDetailsView extends ActionDetailsView {
  readonly view: RunView
}

export interface ListPage<A> {
  readonly items: ReadonlyArray<A>
  /** Empty on the last page. */
  readonly token: string
}

type BlobError = UnreadableBlob | BlobNotFound | BlobFailure

/** The run use cases of RunService (SPEC 5, 7): create, read, list, abort, and an action's data. */
export class Runs extends Context.Tag("runs/Runs")<Runs, {
  readonly create: (
    request: CreateRunRequest
  ) => Effect.Effect<RunView, InvalidArgument | NotFound | AlreadyExists | Unimplemented | StoreUnavailable | BlobError>
  readonly runDetails: (key: RunKey) => Effect.Effect<RunDetailsView, NotFound | StoreUnavailable>
  readonly actionDetails: (key: ActionKey) => Effect.Effect<ActionDetailsView, NotFound | StoreUnavailable>
  readonly listRuns: (
    scope: RunScope,
    request: ListRequestInput
  ) => Effect.Effect<ListPage<RunView>, InvalidArgument | StoreUnavailable>
  readonly listActions: (
    run: RunKey,
    request: ListRequestInput
  ) => Effect.Effect<ListPage<ActionRecord>, InvalidArgument | NotFound | StoreUnavailable>
  readonly abortRun: (key: RunKey, reason: string | undefined) => Effect.Effect<void, NotFound | StoreUnavailable>
  readonly abortAction: (key: ActionKey, reason: string | undefined) => Effect.Effect<void, NotFound | StoreUnavailable>
  readonly actionData: (key: ActionKey) => Effect.Effect<
    { readonly inputs: Uint8Array | undefined; readonly outputs: Uint8Array | undefined },
    NotFound | StoreUnavailable | UnreadableBlob | BlobFailure
  >
  readonly actionDataUris: (
    key: ActionKey
  ) => Effect.Effect<{ readonly inputsUri: string; readonly outputsUri: string }, NotFound | StoreUnavailable>
  readonly logContext: (
    key: ActionKey,
    attempt: number
  ) => Effect.Effect<{ readonly logContext: Payload; readonly cluster: string }, NotFound | StoreUnavailable>
}>() {}

const runNotFound = (key: RunKey) => new NotFound({ message: `run ${runKeyText(key)} not found` })
const actionNotFound = (key: ActionKey) => new NotFound({ message: `action ${actionKeyText(key)} not found` })

/** The outputs file of an attempt: its output URI when it names a file, else `<dir>/outputs.pb`. */
const outputsFile = (uri: string) => (uri.endsWith(".pb") ? uri : `${uri.replace(/\/+$/, "")}/outputs.pb`)

export const make = Effect.gen(function*() {
  const store = yield* RunStore
  const blobs = yield* BlobStore
  const payloads = yield* Payloads
  const settings = yield* RunsSettings
  const feed = yield* ChangeFeed

  const getRun = (key: RunKey) =>
    Effect.flatMap(store.getRun(key), Option.match({ onNone: () => Effect.fail(runNotFound(key)), onSome: Effect.succeed }))
  const getAction = (key: ActionKey) =>
    Effect.flatMap(store.getAction(key), Option.match({ onNone: () => Effect.fail(actionNotFound(key)), onSome: Effect.succeed }))

  const succeededOutputsUri = (action: ActionRecord, attempts: ReadonlyArray<AttemptRecord>) => {
    if (action.phase !== ActionPhase.SUCCEEDED) return undefined
    if (action.outputsUri !== undefined) return action.outputsUri
    const succeeded = latestAttempt(attempts.filter((attempt) => attempt.phase === ActionPhase.SUCCEEDED))
    return succeeded?.outputs === undefined ? undefined : payloads.outputUri(succeeded.outputs)
  }

  /** The action and its outputs URI (once SUCCEEDED); `NotFound` while it has neither inputs nor outputs. */
  const dataOf = (key: ActionKey) =>
    Effect.gen(function*() {
      const action = yield* getAction(key)
      const outputsUri = succeededOutputsUri(action, yield* store.listAttempts(key))
      if (action.inputUri === undefined && outputsUri === undefined) {
        return yield* new NotFound({ message: `action ${actionKeyText(key)} has no recorded inputs or outputs yet` })
      }
      return { action, outputsUri }
    })

  const abort = (key: ActionKey, reason: string | undefined, missing: () => NotFound) =>
    Clock.currentTimeMillis.pipe(
      Effect.flatMap((now) => store.abort(key, { reason: abortReason(reason), abortedBy: undefined }, new Date(now))),
      Effect.flatMap((outcome) =>
        outcome._tag === "TargetMissing"
          ? Effect.fail(missing())
          : feed.publish(outcome.aborted.map((action) => ({ action, kind: "updated" as const })))
      )
    )

  return Runs.of({
    create: makeCreateRun({ store, payloads, blobs, settings, feed }),

    runDetails: Effect.fn("Runs.runDetails")(function*(key) {
      const found = yield* store.getRunDetails(key)
      if (Option.isNone(found)) return yield* runNotFound(key)
      const { attempts, view } = found.value
      return { view, action: view.root, attempts }
    }),

    actionDetails: Effect.fn("Runs.actionDetails")(function*(key) {
      const found = yield* store.getActionDetails(key)
      if (Option.isNone(found)) return yield* actionNotFound(key)
      return found.value
    }),

    listRuns: Effect.fn("Runs.listRuns")(function*(scope, request) {
      const query = yield* parseListRequest(request, { allowedFields: runListFields })
      const page = yield* store.listRuns(scope, query)
      return { items: page.items, token: page.next === undefined ? "" : encodeToken(query, page.next) }
    }),

    listActions: Effect.fn("Runs.listActions")(function*(run, request) {
      const query = yield* parseListRequest(request, { allowedFields: actionListFields })
      yield* getRun(run)
      const page = yield* store.listActions(run, query)
      return { items: page.items, token: page.next === undefined ? "" : encodeToken(query, page.next) }
    }),

    abortRun: Effect.fn("Runs.abortRun")(function*(key, reason) {
      yield* abort({ run: key, name: rootActionName }, reason, () => runNotFound(key))
    }),

    abortAction: Effect.fn("Runs.abortAction")(function*(key, reason) {
      yield* abort(key, reason, () => actionNotFound(key))
    }),

    actionData: Effect.fn("Runs.actionData")(function*(key) {
      const { action, outputsUri } = yield* dataOf(key)
      const read = (uri: string, what: string) =>
        blobs.read(uri).pipe(
          Effect.catchTag("BlobNotFound", () => Effect.fail(new NotFound({ message: `${what} not found at ${uri}` })))
        )
      const inputs = action.inputUri === undefined ? undefined : yield* read(action.inputUri, "inputs")
      const outputs = outputsUri === undefined ? undefined : yield* read(outputsFile(outputsUri), "outputs")
      return { inputs, outputs }
    }),

    actionDataUris: Effect.fn("Runs.actionDataUris")(function*(key) {
      const { action, outputsUri } = yield* dataOf(key)
      return { inputsUri: action.inputUri ?? "", outputsUri: outputsUri ?? "" }
    }),

    logContext: Effect.fn("Runs.logContext")(function*(key, attemptNumber) {
      yield* getAction(key)
      const attempts = yield* store.listAttempts(key)
      const attempt = attemptNumber === 0
        ? latestAttempt(attempts)
        : attempts.find((candidate) => candidate.attempt === attemptNumber)
      if (attempt === undefined) {
        return yield* new NotFound({
          message: attemptNumber === 0
            ? `action ${actionKeyText(key)} has no attempts yet`
            : `attempt ${attemptNumber} of action ${actionKeyText(key)} not found`
        })
      }
      if (attempt.logContext === undefined) {
        return yield* new NotFound({
          message: `attempt ${attempt.attempt} of action ${actionKeyText(key)} has no log context yet`
        })
      }
      return { logContext: attempt.logContext, cluster: attempt.cluster ?? "" }
    })
  })
})

/** Needs RunStore, BlobStore, Payloads, RunsSettings and ChangeFeed. */
export const layer = Layer.effect(Runs, make)

