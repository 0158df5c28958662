import { fromBinary } from "@bufbuild/protobuf"
import type { ServiceImpl } from "@connectrpc/connect"
import { Effect } from "effect"
import { InputsSchema, OutputsSchema } from "#gen/flyteidl2/task/common_pb.js"
import { RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import type { Ingestion } from "../../domain/Ingestion.js"
import { Runs } from "../../domain/Runs.js"
import type { EffectHandlers } from "./EffectHandlers.js"
import { principalOf } from "./AuthInterceptor.js"
import { forwardedSubject, type IdentityOptions } from "./ForwardedIdentity.js"
import { fromPayload, payloadReader } from "./ProtoCodec.js"
import { isBinary } from "./SharedMessages.js"
import { actionKey, attemptAt, createRunRequest, listRequestInput, runKey, runScope } from "./RunRequests.js"
import { buildAction, buildActionDetails, buildRun, buildRunDetails } from "./RunResponses.js"
import { LogContextSchema } from "#gen/flyteidl2/core/execution_pb.js"

/** RunService's unary RPCs: requests mapped to the `Runs` use cases, results to the shared builders. */
export const runServiceHandlers = (
  handlers: EffectHandlers<Runs | Ingestion>,
  identity: IdentityOptions
): Partial<ServiceImpl<typeof RunService>> => ({
  createRun: handlers.unary(RunService.method.createRun, (request, context) =>
    Effect.flatMap(Runs, (runs) =>
      runs.create(createRunRequest(request, {
        requestId: context.requestHeader.get("x-request-id") ?? undefined,
        // With authentication on, the verified caller; a forwarded header could name anyone.
        createdBy: principalOf(context)?.subject ?? forwardedSubject(context.requestHeader, identity)
      }))).pipe(Effect.map((view) => ({ run: buildRun(view) })))
  ),

  abortRun: handlers.unary(RunService.method.abortRun, (request) =>
    Effect.flatMap(Runs, (runs) => runs.abortRun(runKey(request.runId), request.reason)).pipe(Effect.as({}))
  ),

  getRunDetails: handlers.unary(RunService.method.getRunDetails, (request, context) =>
    Effect.flatMap(Runs, (runs) => runs.runDetails(runKey(request.runId))).pipe(
      Effect.map((details) => ({
        details: buildRunDetails(details.view, details.attempts, payloadReader(isBinary(context)))
      }))
    )
  ),

  getActionDetails: handlers.unary(RunService.method.getActionDetails, (request, context) =>
    Effect.flatMap(Runs, (runs) => runs.actionDetails(actionKey(request.actionId))).pipe(
      Effect.map((details) => ({
        details: buildActionDetails(details.action, details.attempts, payloadReader(isBinary(context)))
      }))
    )
  ),

  getActionData: handlers.unary(RunService.method.getActionData, (request) =>
    Effect.flatMap(Runs, (runs) => runs.actionData(actionKey(request.actionId))).pipe(
      Effect.map((data) => ({
        ...(data.inputs === undefined ? {} : { inputs: fromBinary(InputsSchema, data.inputs) }),
        ...(data.outputs === undefined ? {} : { outputs: fromBinary(OutputsSchema, data.outputs) })
      }))
    )
  ),

  getActionDataURIs: handlers.unary(RunService.method.getActionDataURIs, (request) =>
    Effect.flatMap(Runs, (runs) => runs.actionDataUris(actionKey(request.actionId)))
  ),

  getActionLogContext: handlers.unary(RunService.method.getActionLogContext, (request) =>
    Effect.flatMap(attemptAt("attempt", request.attempt), (attempt) =>
      Effect.flatMap(Runs, (runs) => runs.logContext(actionKey(request.actionId), attempt))).pipe(
      Effect.map((found) => ({ logContext: fromPayload(LogContextSchema, found.logContext), cluster: found.cluster }))
    )
  ),

  listRuns: handlers.unary(RunService.method.listRuns, (request) =>
    Effect.flatMap(runScope(request), (scope) =>
      Effect.flatMap(Runs, (runs) => runs.listRuns(scope, listRequestInput(request.request)))).pipe(
        Effect.map((page) => ({ runs: page.items.map(buildRun), token: page.token }))
      )
  ),

  listActions: handlers.unary(RunService.method.listActions, (request) =>
    Effect.flatMap(Runs, (runs) => runs.listActions(runKey(request.runId), listRequestInput(request.request))).pipe(
      Effect.map((page) => ({ actions: page.items.map((action) => buildAction(action)), token: page.token }))
    )
  ),

  abortAction: handlers.unary(RunService.method.abortAction, (request) =>
    Effect.flatMap(Runs, (runs) => runs.abortAction(actionKey(request.actionId), request.reason)).pipe(Effect.as({}))
  )
})
