import type { ConnectRouter } from "@connectrpc/connect"
import { InternalRunService } from "#gen/flyteidl2/workflow/internal_run_service_pb.js"
import { RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import type { EffectHandlers } from "./EffectHandlers.js"

/** Every service this server answers, on the paths `/flyteidl2.workflow.<Service>/<Method>`. */
export const makeRoutes = <R>(handlers: EffectHandlers<R>) => (router: ConnectRouter): void => {
  router.service(RunService, handlers.service(RunService, {}))
  router.service(InternalRunService, handlers.service(InternalRunService, {}))
}
