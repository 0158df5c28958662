import * as MemoryRunStore from "../../src/adapters/memory/MemoryRunStore.js"
import * as SqlRunStore from "../../src/adapters/sql/SqlRunStore.js"
import { backends, describeBackends } from "../support/backends.js"
import { runStoreContract } from "./RunStoreContract.js"

describeBackends("RunStore", backends({ memory: MemoryRunStore.layer, sql: SqlRunStore.layer }), runStoreContract)
