import { Duration, Effect, Layer } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import * as BearerAuthenticator from "../../src/adapters/auth/BearerAuthenticator.js"
import * as FileBlobStore from "../../src/adapters/blob/FileBlobStore.js"
import * as ProtoPayloads from "../../src/adapters/connect/ProtoPayloads.js"
import * as WatchHubsLive from "../../src/adapters/watch/WatchHubs.js"
import * as MemoryChangeFeed from "../../src/adapters/memory/MemoryChangeFeed.js"
import { loadConfig } from "../../src/app/Config.js"
import { layerReadiness } from "../../src/app/ReadinessLive.js"
import { layerServer, ServerAddress } from "../../src/app/ServerLive.js"
import * as IngestionLive from "../../src/domain/Ingestion.js"
import * as RunsLive from "../../src/domain/Runs.js"
import { ClusterEndpoint } from "../../src/adapters/connect/ClusterServiceHandlers.js"
import * as ProjectsLive from "../../src/domain/Projects.js"
import * as TasksLive from "../../src/domain/Tasks.js"
import { RunsSettings } from "../../src/domain/RunsSettings.js"
import { WatchSettings } from "../../src/domain/WatchRules.js"
import * as WatchesLive from "../../src/domain/Watches.js"
import type { TlsSettings } from "../../src/adapters/http/Tls.js"
import type { Authenticator } from "../../src/ports/Authenticator.js"
import type { ChangeFeed, FeedSubscribers } from "../../src/ports/ChangeFeed.js"
import { DatabaseHealth } from "../../src/ports/DatabaseHealth.js"
import type { RunStore } from "../../src/ports/RunStore.js"

/** A storage prefix (`file://` + a temporary directory) removed with the scope. */
export const tempStoragePrefix = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "runs-data-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
).pipe(Effect.map((dir) => pathToFileURL(dir).href))

/**
 * The configuration `npm start` builds from these variables, for the whole service in this process: on
 * 127.0.0.1:`port`, its files in `dir`, stopping within a second; `env` adds to or overrides them.
 */
export const inProcessConfig = (dir: string, port: number, env: Record<string, string>) =>
  loadConfig({
    argv: [],
    env: {
      RUNS_SERVER_HOST: "127.0.0.1",
      RUNS_SERVER_PORT: String(port),
      RUNS_STORAGE_PREFIX: pathToFileURL(join(dir, "data")).href,
      RUNS_SERVER_SHUTDOWN_TIMEOUT: "1s",
      ...env
    },
    cwd: dir
  }).pipe(Effect.map(({ config }) => config), Effect.orDie)

export const serverConfig = {
  host: "127.0.0.1",
  port: 0,
  corsOrigins: ["http://ui.example"],
  maxRequestBytes: 64 * 1024,
  compressMinBytes: 16 * 1024,
  shutdownTimeout: Duration.seconds(2),
  headerTimeout: Duration.seconds(10),
  idleTimeout: Duration.minutes(2)
}

export interface RunsOptions<E = never> {
  /** Default: the memory feed (a `PubSub`). */
  readonly feed?: Layer.Layer<ChangeFeed | FeedSubscribers, E>
  /** Default: 100, as `runs.watchBufferSize`. */
  readonly watchBufferSize?: number
  /** Default: 100,000, as `runs.watchMaxPending`. */
  readonly watchMaxPending?: number
  /** Default: 30 s, as `runs.watchStallTimeout`. */
  readonly watchStallTimeout?: Duration.Duration
  /** Default: development, staging, production, as `runs.domains`. */
  readonly domains?: ReadonlyArray<string>
  /** Default: none, as `runs.clusterEndpoint`. */
  readonly clusterEndpoint?: string
}

/**
 * The run, ingestion and watch use cases over the given store, with a temporary storage prefix; also exposes
 * the store, the change feed (with its subscriber count) and the settings.
 */
export const layerRuns = <E, R = never, E2 = never>(store: Layer.Layer<RunStore, E, R>, options: RunsOptions<E2> = {}) =>
  Layer.unwrapScoped(
    Effect.map(tempStoragePrefix, (storagePrefix) =>
      WatchesLive.layer.pipe(
        Layer.provideMerge(Layer.merge(RunsLive.layer, IngestionLive.layer)),
        Layer.provideMerge(Layer.mergeAll(ProjectsLive.layer, TasksLive.layer)),
        Layer.provideMerge(Layer.succeed(ProjectsLive.ProjectSettings, {
          domains: options.domains ?? ["development", "staging", "production"]
        })),
        Layer.provideMerge(Layer.succeed(ClusterEndpoint, { configured: options.clusterEndpoint })),
        Layer.provide(WatchHubsLive.layer),
        Layer.provideMerge(store),
        Layer.provideMerge(options.feed ?? MemoryChangeFeed.layer),
        Layer.provideMerge(Layer.succeed(WatchSettings, {
          bufferSize: options.watchBufferSize ?? 100,
          maxPending: options.watchMaxPending ?? 100_000,
          stallTimeout: options.watchStallTimeout ?? Duration.seconds(30)
        })),
        Layer.provideMerge(FileBlobStore.layer({ storagePrefix })),
        Layer.provide(ProtoPayloads.layer),
        Layer.provideMerge(Layer.succeed(RunsSettings, { storagePrefix }))
      ))
  )

/**
 * The listening server (port chosen by the OS) over the given store, ready at once; exposes its address,
 * the store (to arrange rows the RPCs under test cannot write) and the settings.
 */
export const layerTestServer = <E, R = never, E2 = never>(
  store: Layer.Layer<RunStore, E, R>,
  options:
    & {
      readonly migrate?: Effect.Effect<void>
      readonly trustIdentity?: boolean
      readonly compressMinBytes?: number
      /** Server settings other than the test defaults (`serverConfig`). */
      readonly server?: Partial<typeof serverConfig>
    }
    & { readonly authenticator?: Layer.Layer<Authenticator>; readonly tls?: TlsSettings }
    & RunsOptions<E2> = {}
) =>
  layerServer(
    { ...serverConfig, compressMinBytes: options.compressMinBytes ?? serverConfig.compressMinBytes, tls: options.tls, ...options.server },
    { trust: options.trustIdentity ?? false, header: "X-Forwarded-User" }
  ).pipe(
    Layer.provideMerge(layerRuns(store, options)),
    Layer.provide(options.authenticator ?? BearerAuthenticator.layerOff),
    Layer.provide(layerReadiness(options.migrate ?? Effect.void)),
    Layer.provide(Layer.succeed(DatabaseHealth, { check: Effect.void }))
  )

export const baseUrl = Effect.map(ServerAddress, (address) => `http://${address.host}:${address.port}`)
