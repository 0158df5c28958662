import type { ConnectRouter } from "@connectrpc/connect"
import { InternalRunService } from "#gen/flyteidl2/workflow/internal_run_service_pb.js"
import { RunService } from "#gen/flyteidl2/workflow/run_service_pb.js"
import type { Ingestion } from "../../domain/Ingestion.js"
import type { Runs } from "../../domain/Runs.js"
import type { Watches } from "../../domain/Watches.js"
import { internalRunServiceHandlers } from "./InternalRunServiceHandlers.js"
import type { EffectHandlers } from "./EffectHandlers.js"
import type { IdentityOptions } from "./ForwardedIdentity.js"
import { runServiceHandlers } from "./RunServiceHandlers.js"
import { watchHandlers } from "./WatchHandlers.js"

/** Every service this server answers, on the paths `/flyteidl2.workflow.<Service>/<Method>`. */
/** What the RPC handlers run with. */
export type RpcServices = Runs | Ingestion | Watches

export const makeRoutes = (handlers: EffectHandlers<RpcServices>, identity: IdentityOptions) =>
(router: ConnectRouter): void => {
  router.service(
    RunService,
    handlers.service(RunService, { ...runServiceHandlers(handlers, identity), ...watchHandlers(handlers) })
  )
  router.service(InternalRunService, handlers.service(InternalRunService, internalRunServiceHandlers(handlers)))
}
