import { fromBinary } from "@bufbuild/protobuf"
import type { ServiceImpl } from "@connectrpc/connect"
import { Effect } from "effect"
import { DataProxyService } from "#gen/flyteidl2/dataproxy/dataproxy_service_pb.js"
import { InputsSchema, OutputsSchema } from "#gen/flyteidl2/task/common_pb.js"
import { Runs } from "../../domain/Runs.js"
import type { EffectHandlers } from "./EffectHandlers.js"
import { actionKey } from "./RunRequests.js"

/** DataProxyService: GetActionData, answered as RunService.GetActionData (the web UI's Input and Output panels). */
export const dataProxyServiceHandlers = (
  handlers: EffectHandlers<Runs>
): Partial<ServiceImpl<typeof DataProxyService>> => ({
  getActionData: handlers.unary(DataProxyService.method.getActionData, (request) =>
    Effect.flatMap(Runs, (runs) => runs.actionData(actionKey(request.actionId))).pipe(
      Effect.map((data) => ({
        ...(data.inputs === undefined ? {} : { inputs: fromBinary(InputsSchema, data.inputs) }),
        ...(data.outputs === undefined ? {} : { outputs: fromBinary(OutputsSchema, data.outputs) })
      }))
    ))
})
