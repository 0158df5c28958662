import { Code, ConnectError, type ContextValues, createContextKey, type HandlerContext, type Interceptor } from "@connectrpc/connect"
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

/** What a call's credential proved: its principal, or the refusal the call is answered with. */
export type Verdict = { readonly principal: Principal } | { readonly refusal: ConnectError }

const verdictKey = createContextKey<Verdict | undefined>(undefined, { description: "the credential's verdict" })

/** The context values that carry a call's verdict to `authInterceptor`. */
export const withVerdict = (values: ContextValues, verdict: Verdict): ContextValues => values.set(verdictKey, verdict)

/**
 * Checks the `Authorization: Bearer` credential of a call to a procedure of `serviceTypeName`: missing or bad
 * credentials are `Unauthenticated`, a credential without the service's role `PermissionDenied`; each refusal is
 * logged once with the real reason. Runs before the call's body is read (see ConnectHandler), with the runtime
 * the handlers captured.
 */
export const makeAuthCheck = <R>(authenticator: Context.Tag.Service<Authenticator>, runtime: Runtime.Runtime<R>) => {
  const runExit = Runtime.runPromiseExit(runtime)
  return async (serviceTypeName: string, methodName: string, header: Headers, signal: AbortSignal): Promise<Verdict> => {
    const procedure = `${serviceTypeName}/${methodName}`
    const role = requiredRole(serviceTypeName)
    const token = bearerToken(header.get("authorization"))
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
            error: new ConnectError(`this credential may not call ${serviceTypeName}`, Code.PermissionDenied),
            logDetail: `${principal.subject} lacks the ${role} role`
          })
        )
      )
    const requestId = header.get("x-request-id") ?? crypto.randomUUID()
    const exit = await runExit(
      Effect.catchAllCause(check, (cause) => {
        // A refusal as decided above; a defect or an interruption as every handler's (Internal, Canceled).
        const failure = Option.getOrElse(Cause.failureOption(cause), () => toConnectError(cause, requestId))
        return Effect.zipRight(logFailure(procedure, requestId, failure), Effect.fail(failure.error))
      }),
      { signal }
    )
    return Exit.isSuccess(exit)
      ? { principal: exit.value }
      : {
        refusal: Option.getOrElse(Cause.failureOption(exit.cause), () => new ConnectError("the request was cancelled", Code.Canceled))
      }
  }
}

/**
 * Answers every call (Connect, gRPC and gRPC-Web, unary and streaming) with the verdict its credential got
 * before the call was read (`withVerdict`), and keeps the principal for the handler (`principalOf`). A call
 * with no verdict is refused: authentication is never skipped by a path that did not check.
 */
export const authInterceptor: Interceptor = (next) => (req) => {
  const verdict = req.contextValues.get(verdictKey)
  if (verdict === undefined) throw unauthenticated()
  if ("refusal" in verdict) throw verdict.refusal
  req.contextValues.set(principalKey, verdict.principal)
  return next(req)
}

/**
 * The body of a call refused before it was read: one empty message in the call's own encoding, so that the
 * refusal is answered in its protocol without decoding (or decompressing) a byte of what an unproven caller
 * sent. Undefined for a content type no procedure takes (the router refuses those itself).
 */
export const emptyBodyFor = (contentType: string): Uint8Array | undefined => {
  const type = contentType.split(";", 1)[0]!.trim().toLowerCase()
  const empty = type.endsWith("json") ? new TextEncoder().encode("{}") : new Uint8Array(0)
  if (type === "application/proto" || type === "application/json") return empty
  if (!type.startsWith("application/grpc") && !type.startsWith("application/connect+")) return undefined
  const enveloped = new Uint8Array(5 + empty.byteLength)
  new DataView(enveloped.buffer).setUint32(1, empty.byteLength)
  enveloped.set(empty, 5)
  return enveloped
}
