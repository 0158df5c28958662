import type { DescMessage, MessageShape } from "@bufbuild/protobuf"
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect"
import { Cause, Effect, Either, Metric, Stream } from "effect"
import { ActionEventSchema } from "#gen/flyteidl2/workflow/run_definition_pb.js"
import {
  InternalRunService,
  type RecordActionRequest,
  RecordActionRequestSchema,
  type UpdateActionStatusRequest,
  UpdateActionStatusRequestSchema
} from "#gen/flyteidl2/workflow/internal_run_service_pb.js"
import type { ActionEvent } from "#gen/flyteidl2/workflow/run_definition_pb.js"
import { InvalidArgument } from "../../domain/Errors.js"
import { Ingestion } from "../../domain/Ingestion.js"
import type { Runs } from "../../domain/Runs.js"
import { logFailure, toConnectError, toStatus } from "./ConnectErrors.js"
import type { EffectHandlers } from "./EffectHandlers.js"
import { recordActionInput, statusReport, storedEvent } from "./InternalRequests.js"
import { validateRequest } from "./RequestValidation.js"
import { actionKey } from "./RunRequests.js"
import { codeName, inBandStatus } from "./RpcMetrics.js"
import * as Metrics from "../../ports/Metrics.js"

const ok = { code: 0, message: "" }

/**
 * Every failure is answered in-band, as a `google.rpc.Status` in a successful response (SPEC 6): executors
 * retry transport errors forever. Each failure is logged once.
 */
const inBand = <E, R>(procedure: string, effect: Effect.Effect<unknown, E, R>) =>
  effect.pipe(
    Effect.as(ok),
    Effect.catchAllCause((cause) => {
      if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
      const requestId = crypto.randomUUID()
      const failure = toConnectError(cause, requestId)
      const counted = Metric.increment(Metric.taggedWithLabels(Metrics.inBandErrors, Metrics.labels([
        ["rpc_method", procedure.slice(procedure.indexOf("/") + 1)],
        ["runs_inband_status_code", codeName(failure.error.code)]
      ])))
      return Effect.as(Effect.zipRight(counted, logFailure(procedure, requestId, failure)), toStatus(failure))
    })
  )

const service = "flyteidl2.workflow.InternalRunService"

/** A streamed request without its message, answered in-band as InvalidArgument, counted like any other. */
const countMissing = (method: string) =>
  Metric.increment(Metric.taggedWithLabels(Metrics.inBandErrors, Metrics.labels([
    ["rpc_method", method],
    ["runs_inband_status_code", "invalid_argument"]
  ])))

/** Leaves a unary answer's in-band code where the metrics interceptor reads it. */
const answered = <A extends { readonly status: { readonly code: number } }>(context: HandlerContext) => (response: A) => {
  context.values.set(inBandStatus, response.status.code)
  return response
}

const validated = <Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>) =>
  Effect.mapError(validateRequest(schema, message), (invalid) => new InvalidArgument({ message: invalid.message }))

const recordAction = (request: RecordActionRequest, method = "RecordAction") =>
  inBand(
    `${service}/${method}`,
    Effect.zipRight(
      validated(RecordActionRequestSchema, request),
      Effect.flatMap(recordActionInput(request), (input) =>
        Effect.flatMap(Ingestion, (ingestion) => ingestion.recordAction(input)))
    )
  ).pipe(Effect.map((status) => ({ ...(request.actionId === undefined ? {} : { actionId: request.actionId }), status })))

const updateStatus = (request: UpdateActionStatusRequest, method = "UpdateActionStatus") =>
  inBand(
    `${service}/${method}`,
    Effect.zipRight(
      validated(UpdateActionStatusRequestSchema, request),
      Effect.flatMap(statusReport(request.status), (report) =>
        Effect.flatMap(Ingestion, (ingestion) => ingestion.updateStatus(actionKey(request.actionId), report)))
    )
  ).pipe(Effect.map((status) => ({ ...(request.actionId === undefined ? {} : { actionId: request.actionId }), status })))

/** Valid events are stored in one batch; invalid ones are skipped and named in a code 3 status. */
const recordEvents = (events: ReadonlyArray<ActionEvent>) =>
  Effect.gen(function*() {
    const checked = yield* Effect.forEach(events, (event, index) =>
      Effect.either(Effect.flatMap(validateRequest(ActionEventSchema, event), () => storedEvent(event))).pipe(
        Effect.map(Either.mapLeft((invalid) => `events[${index}]: ${invalid.message}`))
      ))
    const valid = checked.flatMap((result) => (Either.isRight(result) ? [result.right] : []))
    const problems = checked.flatMap((result) => (Either.isLeft(result) ? [result.left] : []))
    yield* Effect.flatMap(Ingestion, (ingestion) => ingestion.recordEvents(valid))
    yield* Metric.incrementBy(Metrics.eventsIngested, valid.length)
    if (problems.length > 0) {
      return yield* new InvalidArgument({
        message: `${problems.length} of ${events.length} events were invalid and skipped: ${problems.join("; ")}`
      })
    }
  })

/** InternalRunService: the unary RPCs and their bidirectional streams, answered in order, nonce echoed. */
export const internalRunServiceHandlers = (
  handlers: EffectHandlers<Ingestion | Runs>
): Partial<ServiceImpl<typeof InternalRunService>> => ({
  recordAction: handlers.unary(InternalRunService.method.recordAction, (request, context) =>
    Effect.map(recordAction(request), answered(context)), {
    validate: false
  }),
  recordActionStream: handlers.bidiStream(InternalRunService.method.recordActionStream, (requests) =>
    Stream.mapEffect(requests, (item) =>
      Effect.map(
        item.request === undefined
          ? Effect.as(countMissing("RecordActionStream"), { status: { code: 3, message: "request: value is required" } })
          : recordAction(item.request, "RecordActionStream"),
        (response) => ({ response })
      ))),

  updateActionStatus: handlers.unary(InternalRunService.method.updateActionStatus, (request, context) =>
    Effect.map(updateStatus(request), answered(context)), {
    validate: false
  }),
  updateActionStatusStream: handlers.bidiStream(InternalRunService.method.updateActionStatusStream, (requests) =>
    Stream.mapEffect(requests, (item) =>
      Effect.map(
        item.request === undefined
          ? Effect.as(countMissing("UpdateActionStatusStream"), { status: { code: 3, message: "request: value is required" } })
          : updateStatus(item.request, "UpdateActionStatusStream"),
        (response) => ({ response, nonce: item.nonce })
      ))),

  recordActionEvents: handlers.unary(InternalRunService.method.recordActionEvents, (request, context) =>
    Effect.map(
      inBand(`${service}/RecordActionEvents`, recordEvents(request.events)),
      (status) => answered(context)({ status })
    ), { validate: false }),
  recordActionEventStream: handlers.bidiStream(InternalRunService.method.recordActionEventStream, (requests) =>
    Stream.mapEffect(requests, (item) => {
      const event = item.request?.event
      const status = event === undefined
        ? Effect.as(countMissing("RecordActionEventStream"), { code: 3, message: "request.event: value is required" })
        : inBand(`${service}/RecordActionEventStream`, recordEvents([event]))
      return Effect.map(status, (status) => ({
        response: { ...(event?.id === undefined ? {} : { actionId: event.id }), status },
        nonce: item.nonce
      }))
    }))
})
