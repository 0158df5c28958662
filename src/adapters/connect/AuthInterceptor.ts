import { Code, ConnectError, createContextKey, type HandlerContext, type Interceptor } from "@connectrpc/connect"
import { Cause, type Context, Effect, Exit, Option, Runtime } from "effect"
import { InternalRunService } from "#gen/flyteidl2/workflow/internal_run_service_pb.js"
import { mayActAs, type Principal, type Role } from "../../domain/Access.js"
import type { Authenticator } from "../../ports/Authenticator.js"
import { logFailure, toConnectError } from "./ConnectErrors.js"

/**
 * The role a service needs, by its name: InternalRunService is for executors, every other service (RunService
 * and any service added to the routes later) for users. A new service is therefore never served unauthenticated.
 */
export const requiredRole = (serviceTypeName: string): Role =>
  serviceTypeName === InternalRunService.typeName ? "executor" : "user"

const principalKey = createContextKey<Principal | undefined>(undefined, { description: "the verified caller" })

/** The caller the request's credential proved; `undefined` when authentication is off. */
export const principalOf = (context: HandlerContext): Principal | undefined => context.values.get(principalKey)

// One message for every credential that proves no one, so a caller cannot tell a bad signature from a wrong
// issuer, audience or expiry: the reason goes to the log only.
const unauthenticated = () =>
  new ConnectError("a valid bearer token is required", Code.Unauthenticated, { "www-authenticate": "Bearer" })

const bearerToken = (authorization: string | null): string | undefined =>
  authorization?.match(/^Bearer +([\x21-\x7e]+) *$/i)?.[1]

/**
 * Checks the `Authorization: Bearer` credential of every call (Connect, gRPC and gRPC-Web, unary and streaming)
 * before its handler runs, and keeps the principal for the handler (`principalOf`). Missing or bad credentials
 * are `Unauthenticated`, a credential without the service's role `PermissionDenied`; each refusal is logged
 * once with the real reason. Part of the Connect bridge: it runs with the runtime the handlers captured.
 */
export const makeAuthInterceptor = <R>(authenticator: Context.Tag.Service<Authenticator>, runtime: Runtime.Runtime<R>): Interceptor => {
  const runExit = Runtime.runPromiseExit(runtime)
  return (next) => async (req) => {
    const procedure = `${req.service.typeName}/${req.method.name}`
    const role = requiredRole(req.service.typeName)
    const token = bearerToken(req.header.get("authorization"))
    const check = token === undefined
      ? Effect.fail({ error: unauthenticated(), logDetail: "no bearer token" })
      : authenticator.authenticate(token).pipe(
        Effect.mapError((failure) => ({
          error: failure._tag === "Unauthenticated"
            ? unauthenticated()
            : new ConnectError("credentials cannot be verified right now", Code.Unavailable),
          logDetail: failure.reason
        })),
        Effect.filterOrFail(
          (principal) => mayActAs(principal, role),
          (principal) => ({
            error: new ConnectError(`this credential may not call ${req.service.typeName}`, Code.PermissionDenied),
            logDetail: `${principal.subject} lacks the ${role} role`
          })
        )
      )
    const requestId = req.header.get("x-request-id") ?? crypto.randomUUID()
    const exit = await runExit(
      Effect.catchAllCause(check, (cause) => {
        // A refusal as decided above; a defect or an interruption as every handler's (Internal, Canceled).
        const failure = Option.getOrElse(Cause.failureOption(cause), () => toConnectError(cause, requestId))
        return Effect.zipRight(logFailure(procedure, requestId, failure), Effect.fail(failure.error))
      }),
      { signal: req.signal }
    )
    if (Exit.isFailure(exit)) {
      throw Option.getOrElse(Cause.failureOption(exit.cause), () => new ConnectError("the request was cancelled", Code.Canceled))
    }
    req.contextValues.set(principalKey, exit.value)
    return next(req)
  }
}
