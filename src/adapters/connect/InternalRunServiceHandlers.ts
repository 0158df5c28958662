import type { DescMessage, MessageShape } from "@bufbuild/protobuf"
import type { ServiceImpl } from "@connectrpc/connect"
import { Cause, Effect, Either, Stream } from "effect"
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
      return Effect.as(logFailure(procedure, requestId, failure), toStatus(failure))
    })
  )

const validated = <Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>) =>
  Effect.mapError(validateRequest(schema, message), (invalid) => new InvalidArgument({ message: invalid.message }))

const recordAction = (request: RecordActionRequest) =>
  inBand(
    "flyteidl2.workflow.InternalRunService/RecordAction",
    Effect.zipRight(
      validated(RecordActionRequestSchema, request),
      Effect.flatMap(recordActionInput(request), (input) =>
        Effect.flatMap(Ingestion, (ingestion) => ingestion.recordAction(input)))
    )
  ).pipe(Effect.map((status) => ({ ...(request.actionId === undefined ? {} : { actionId: request.actionId }), status })))

const updateStatus = (request: UpdateActionStatusRequest) =>
  inBand(
    "flyteidl2.workflow.InternalRunService/UpdateActionStatus",
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
  recordAction: handlers.unary(InternalRunService.method.recordAction, (request) => recordAction(request), {
    validate: false
  }),
  recordActionStream: handlers.bidiStream(InternalRunService.method.recordActionStream, (requests) =>
    Stream.mapEffect(requests, (item) =>
      Effect.map(
        item.request === undefined
          ? Effect.succeed({ status: { code: 3, message: "request: value is required" } })
          : recordAction(item.request),
        (response) => ({ response })
      ))),

  updateActionStatus: handlers.unary(InternalRunService.method.updateActionStatus, (request) => updateStatus(request), {
    validate: false
  }),
  updateActionStatusStream: handlers.bidiStream(InternalRunService.method.updateActionStatusStream, (requests) =>
    Stream.mapEffect(requests, (item) =>
      Effect.map(
        item.request === undefined
          ? Effect.succeed({ status: { code: 3, message: "request: value is required" } })
          : updateStatus(item.request),
        (response) => ({ response, nonce: item.nonce })
      ))),

  recordActionEvents: handlers.unary(InternalRunService.method.recordActionEvents, (request) =>
    Effect.map(
      inBand("flyteidl2.workflow.InternalRunService/RecordActionEvents", recordEvents(request.events)),
      (status) => ({ status })
    ), { validate: false }),
  recordActionEventStream: handlers.bidiStream(InternalRunService.method.recordActionEventStream, (requests) =>
    Stream.mapEffect(requests, (item) => {
      const event = item.request?.event
      const status = event === undefined
        ? Effect.succeed({ code: 3, message: "request.event: value is required" })
        : inBand("flyteidl2.workflow.InternalRunService/RecordActionEventStream", recordEvents([event]))
      return Effect.map(status, (status) => ({
        response: { ...(event?.id === undefined ? {} : { actionId: event.id }), status },
        nonce: item.nonce
      }))
    }))
})
