import { Layer } from "effect"
import * as MemoryRunStore from "../../src/adapters/memory/MemoryRunStore.js"
import * as SqlOutbox from "../../src/adapters/sql/SqlOutbox.js"
import * as SqlRunStore from "../../src/adapters/sql/SqlRunStore.js"
import { backends, describeBackends } from "../support/backends.js"
import { outboxContract } from "./OutboxContract.js"

describeBackends(
  "Outbox",
  backends({ memory: MemoryRunStore.layerWithOutbox, sql: Layer.merge(SqlRunStore.layer, SqlOutbox.layer) }),
  outboxContract
)
