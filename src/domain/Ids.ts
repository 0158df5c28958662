import { Effect, Random } from "effect"

/** A run is unique per (project, domain, name); `org` is recorded beside it but identifies nothing. */
export interface RunKey {
  readonly project: string
  readonly domain: string
  readonly name: string
}

export interface ActionKey {
  readonly run: RunKey
  readonly name: string
}

/** A task in the `tasks` table (org ignored). */
export interface TaskKey {
  readonly project: string
  readonly domain: string
  readonly name: string
  readonly version: string
}

export const rootActionName = "a0"

export const runKeyText = (key: RunKey): string => `${key.project}/${key.domain}/${key.name}`
export const actionKeyText = (key: ActionKey): string => `${runKeyText(key.run)}/${key.name}`

const dns1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/

/** Why `name` cannot name a run (a DNS-1035 label of at most 30 characters), or undefined when it can. */
export const runNameProblem = (name: string): string | undefined => {
  if (name.length === 0) return "must not be empty"
  if (name.length > 30) return `must be at most 30 characters (has ${name.length})`
  if (!dns1035.test(name)) {
    return "must be a DNS-1035 label: lowercase letters, digits and '-', starting with a letter and ending with a letter or digit"
  }
  return undefined
}

const nameAlphabet = "bcdfghjklmnpqrstvwxz2456789"

/** `r` + 19 characters of upstream's alphabet, drawn from Effect's `Random` (cryptographic in the app). */
export const generateRunName: Effect.Effect<string> = Effect.map(
  Effect.all(Array.from({ length: 19 }, () => Random.nextIntBetween(0, nameAlphabet.length))),
  (indexes) => `r${indexes.map((i) => nameAlphabet[i]).join("")}`
)
