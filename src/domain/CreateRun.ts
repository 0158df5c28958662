import type { TaskKey } from "./Ids.js"
import type { Fingerprint, Payload } from "./Payload.js"
import type { RunSource } from "./Phase.js"

/** A CreateRun request, as the domain sees it. */
export interface CreateRunRequest {
  readonly id:
    | { readonly kind: "name"; readonly org: string; readonly project: string; readonly domain: string; readonly name: string }
    | { readonly kind: "project"; readonly org: string; readonly project: string; readonly domain: string }
  readonly task:
    | { readonly kind: "spec"; readonly spec: Payload }
    | { readonly kind: "id"; readonly key: TaskKey }
    | { readonly kind: "trigger"; readonly name: string }
  readonly inputs:
    | { readonly kind: "inline"; readonly inputs: Payload }
    | { readonly kind: "offloaded"; readonly uri: string }
    | { readonly kind: "none" }
  readonly runSpec: Payload | undefined
  readonly source: RunSource
  /** SHA-256 of the canonical request with every org cleared. */
  readonly fingerprint: Fingerprint
  /** The client's `x-request-id`, if any. */
  readonly requestId: string | undefined
  /** The creator's subject, when forwarded identity is trusted. */
  readonly createdBy: string | undefined
}

const trimSlash = (uri: string) => uri.replace(/\/+$/, "")

/** Where a run's data lives (SPEC 5). */
export const runLocations = (storagePrefix: string, run: { project: string; domain: string; name: string }) => {
  const base = `${trimSlash(storagePrefix)}/${run.project}/${run.domain}/${run.name}`
  return {
    base,
    inlineInputsUri: `${base}/inputs/inputs.pb`,
    runOutputBase: `${base}/`
  }
}

/** The inputs file of offloaded inputs: `<uri>/inputs.pb`. */
export const offloadedInputsUri = (uri: string): string => `${trimSlash(uri)}/inputs.pb`

/** What the executor is sent: the inputs file's directory (upstream's convention). */
export const inputsDirectory = (inputsUri: string): string => inputsUri.replace(/\/inputs\.pb$/, "")
