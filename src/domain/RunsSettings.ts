import { Context } from "effect"

/** The settings the run use cases read (from `runs.*` in the configuration). */
export class RunsSettings extends Context.Tag("runs/RunsSettings")<RunsSettings, {
  /** Absolute URI, no trailing `/`, e.g. `file:///var/lib/runs/data`. */
  readonly storagePrefix: string
}>() {}
