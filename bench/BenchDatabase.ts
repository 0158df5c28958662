import { randomBytes } from "node:crypto"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import pg from "pg"
import { layerPostgresUrl, layerSqlite } from "../src/adapters/sql/SqlClients.js"
import { freePort } from "./Processes.js"

/**
 * The bench's databases: the service's and the framework-less reference's, each a SQLite file in the work folder
 * or a scratch Postgres database (BENCH_POSTGRES_URL, else TEST_POSTGRES_URL, else the local server), dropped at
 * the end; and the service's config file that names its own.
 */
export const benchDatabases = (options: { readonly postgres: boolean; readonly work: string }) => {
  const { postgres, work } = options
  const base = process.env["BENCH_POSTGRES_URL"] ?? process.env["TEST_POSTGRES_URL"] ??
    "postgres://postgres@127.0.0.1:5432/postgres"
  const serviceName = `runs_bench_${randomBytes(4).toString("hex")}`
  const referenceName = `${serviceName}_reference`
  const serviceFile = join(work, "runs.db")
  const referenceFile = join(work, "reference.db")

  const urlOf = (name: string) => {
    const url = new URL(base)
    url.pathname = `/${name}`
    return url
  }

  const query = async (connectionString: string, text: string) => {
    const client = new pg.Client({ connectionString })
    await client.connect()
    try {
      await client.query(text)
    } finally {
      await client.end()
    }
  }

  const clientOf = (name: string, file: string) => postgres ? layerPostgresUrl(urlOf(name).href) : layerSqlite({ file })

  return {
    /** Creates the service's database (a SQLite file the service makes itself). */
    create: async () => {
      if (postgres) await query(base, `CREATE DATABASE ${serviceName}`)
    },
    /** A client of the service's database. */
    serviceClient: () => clientOf(serviceName, serviceFile),
    /** Creates the reference's database; where it is and a client of it. */
    createReference: async () => {
      if (postgres) await query(base, `CREATE DATABASE ${referenceName}`)
      return {
        database: postgres ? urlOf(referenceName).href : referenceFile,
        client: clientOf(referenceName, referenceFile)
      }
    },
    /**
     * On Postgres, table statistics as autovacuum would have them (it analyzes a table within about a minute of
     * a 10% change): a freshly seeded table has none, and the planner takes it for empty.
     */
    analyze: async () => {
      if (postgres) await query(urlOf(serviceName).href, "ANALYZE")
    },
    /** The service's config file, on a free port of its own. */
    configFile: async () => {
      const port = await freePort()
      const url = urlOf(serviceName)
      const databaseConfig = postgres
        ? [
          "database:",
          "  postgres:",
          `    host: "${url.hostname}"`,
          `    port: ${url.port === "" ? 5432 : url.port}`,
          `    dbname: "${serviceName}"`,
          `    username: "${decodeURIComponent(url.username) || "postgres"}"`,
          `    password: "${decodeURIComponent(url.password)}"`,
          // Postgres allows 100 connections by default; the service's own default pool could take them all.
          "  maxOpenConnections: 20"
        ]
        : ["database:", "  sqlite:", `    file: "${serviceFile}"`]
      const file = join(work, "config.yaml")
      writeFileSync(
        file,
        [
          "runs:",
          "  server:",
          `    host: "127.0.0.1"`,
          `    port: ${port}`,
          `  storagePrefix: "file://${join(work, "data")}"`,
          ...databaseConfig,
          "logger:",
          "  level: 4",
          "  show-source: false",
          ""
        ].join("\n")
      )
      return { file, baseUrl: `http://127.0.0.1:${port}` }
    },
    /** Drops the Postgres databases (the SQLite files go with the work folder). */
    dropAll: async () => {
      if (!postgres) return
      for (const name of [serviceName, referenceName]) {
        await query(base, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined)
      }
    }
  }
}
