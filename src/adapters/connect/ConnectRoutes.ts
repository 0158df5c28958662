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
import { ClusterService } from "#gen/flyteidl2/cluster/service_pb.js"
import { DataProxyService } from "#gen/flyteidl2/dataproxy/dataproxy_service_pb.js"
import { ProjectService } from "#gen/flyteidl2/project/project_service_pb.js"
import { TaskService } from "#gen/flyteidl2/task/task_service_pb.js"
import type { Projects } from "../../domain/Projects.js"
import type { Tasks } from "../../domain/Tasks.js"
import { type ClusterEndpoint, clusterServiceHandlers } from "./ClusterServiceHandlers.js"
import { dataProxyServiceHandlers } from "./DataProxyServiceHandlers.js"
import { projectServiceHandlers } from "./ProjectServiceHandlers.js"
import { taskServiceHandlers } from "./TaskServiceHandlers.js"

/** Every service this server answers, on the paths `/flyteidl2.workflow.<Service>/<Method>`. */
/** What the RPC handlers run with. */
export type RpcServices = Runs | Ingestion | Watches | Projects | Tasks | ClusterEndpoint

export const makeRoutes = (handlers: EffectHandlers<RpcServices>, identity: IdentityOptions) =>
(router: ConnectRouter): void => {
  router.service(
    RunService,
    handlers.service(RunService, { ...runServiceHandlers(handlers, identity), ...watchHandlers(handlers) })
  )
  router.service(InternalRunService, handlers.service(InternalRunService, internalRunServiceHandlers(handlers)))
  // The services the web UI calls beside RunService (issue #28); their other methods answer Unimplemented.
  router.service(ProjectService, handlers.service(ProjectService, projectServiceHandlers(handlers)))
  router.service(TaskService, handlers.service(TaskService, taskServiceHandlers(handlers, identity)))
  router.service(ClusterService, handlers.service(ClusterService, clusterServiceHandlers(handlers, identity)))
  router.service(DataProxyService, handlers.service(DataProxyService, dataProxyServiceHandlers(handlers)))
}
