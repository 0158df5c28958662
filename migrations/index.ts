import schema from "./0001_schema.js"
import catalog from "./0002_catalog.js"
import retention from "./0003_retention.js"
import outboxTrace from "./0004_outbox_trace.js"
import eventFacts from "./0005_event_facts.js"

/** Every migration, keyed `<id>_<name>` for `Migrator.fromRecord`; static so it works under tsx and compiled. */
export const migrations = {
  "0001_schema": schema,
  "0002_catalog": catalog,
  "0003_retention": retention,
  "0004_outbox_trace": outboxTrace,
  "0005_event_facts": eventFacts
}
