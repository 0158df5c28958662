import * as MemoryRunStore from "../../src/adapters/memory/MemoryRunStore.js"
import * as SqlRunStore from "../../src/adapters/sql/SqlRunStore.js"
import { backends, describeBackends } from "../support/backends.js"
import { runStoreCatalogContract } from "./RunStoreCatalogContract.js"
import { runStoreContract } from "./RunStoreContract.js"

describeBackends("RunStore", backends({ memory: MemoryRunStore.layer, sql: SqlRunStore.layer }), runStoreContract)
describeBackends("RunStore projects and tasks", backends({ memory: MemoryRunStore.layer, sql: SqlRunStore.layer }), runStoreCatalogContract)
