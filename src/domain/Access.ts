/**
 * What a caller may do. A `user` calls RunService and every other service meant for people and their tools;
 * an `executor` reports progress through InternalRunService. The roles are separate: an executor credential
 * cannot create or abort runs, and a user credential cannot forge progress.
 */
export type Role = "user" | "executor"

export const roles: ReadonlyArray<Role> = ["user", "executor"]

/** A caller whose credential was verified. */
export interface Principal {
  /** Who it is (a token's subject, a static token's name); recorded as the creator of the runs it creates. */
  readonly subject: string
  /** Empty when the credential is valid but grants nothing here: every call is then refused. */
  readonly roles: ReadonlySet<Role>
}

export const mayActAs = (principal: Principal, role: Role): boolean => principal.roles.has(role)
