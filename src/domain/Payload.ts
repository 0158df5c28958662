import { Brand } from "effect"

/**
 * An IDL payload the domain carries but does not read (a task spec, run spec, inputs, outputs, log info,
 * error info...): its binary protobuf encoding, the source of truth, and its protobuf JSON rendering for
 * people reading the database.
 */
export interface Payload {
  readonly binary: Uint8Array
  readonly json: string
}

/** No payload: what an absent binary column reads as. */
export const emptyPayload: Payload = { binary: new Uint8Array(), json: "" }

/** A SHA-256 hex digest of a request with its org fields cleared (SPEC 5). */
export type Fingerprint = string & Brand.Brand<"Fingerprint">
export const Fingerprint = Brand.nominal<Fingerprint>()
