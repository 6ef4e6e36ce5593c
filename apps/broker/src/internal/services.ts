/**
 * The services behind the HTTP layer, chosen by configuration (DESIGN §13): the embedded
 * engine or a DynamoDB endpoint, the local keyring or KMS, the JSONL audit sink.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import type { DeliveryPorts, EgressProxy, ForwardProxy } from "@aap/agent-coordination"
import {
  AwsCredentials,
  CoordinationStore,
  CurrentCatalog,
  Delivery,
  Identities,
  IdentityRepository,
  OidcIssuer,
  ProvisionedKeys,
  Provisioner,
  SessionRepository,
  Sessions
} from "@aap/agent-coordination"
import { AuditKeys, AuditLog, AuditReader, type AuditSink, DynamoDbSink, JsonlSink } from "@aap/audit"
import { KeyProvider, type SystemKeys } from "@aap/key-custody"
import { DynamoDb } from "@aap/local-stack"
import { SecretStore } from "@aap/vault"
import { FetchHttpClient } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { Data, Effect, Layer, Option } from "effect"
import type { Authenticator } from "../Auth.js"
import { type BrokerConfigShape, issuerUrl } from "../BrokerConfig.js"
import * as CatalogHolder from "../CatalogHolder.js"
import {
  layerEgressProxy,
  layerForwardProxy,
  layerSettings as layerProxySettings
} from "../proxy/ProxyLive.js"
import * as Readiness from "../Readiness.js"
import { layerDeliverySessions, layerSecrets, layerTimedAudit, type SecretCache } from "./delivery.js"
import type { BrokerMetrics } from "./observability.js"
import { layerAuthenticator, layerSessionCache, type SessionCache } from "./sessionCache.js"
import { layerSessionGauge } from "./sessionGauge.js"

export class StartError extends Data.TaggedError("StartError")<{ readonly message: string }> {}

const describe =
  (what: string) =>
  (e: unknown): StartError => {
    const tag = e !== null && typeof e === "object" && "_tag" in e ? String(e._tag) : "Error"
    const message =
      e instanceof Error || (e !== null && typeof e === "object" && "message" in e)
        ? String((e as { message: unknown }).message)
        : String(e)
    return new StartError({ message: `${what}: ${tag}: ${message}` })
  }

export const ensureHome = (home: string): Effect.Effect<void, StartError> =>
  Effect.try({
    try: () => {
      Fs.mkdirSync(home, { recursive: true, mode: 0o700 })
      Fs.mkdirSync(Path.join(home, "data"), { recursive: true, mode: 0o700 })
      Fs.mkdirSync(Path.join(home, "audit"), { recursive: true, mode: 0o700 })
    },
    catch: describe(`cannot create AAP_HOME ${home}`)
  })

/** The DynamoDB client: the embedded engine under `home/data`, or the configured endpoint. */
export const layerDynamo = (config: BrokerConfigShape): Layer.Layer<DynamoDb.DynamoDb, StartError> =>
  Option.match(config.dynamodbEndpoint, {
    onNone: () =>
      DynamoDb.layerEmbedded({ dir: Path.join(config.home, "data"), tablePrefix: config.tablePrefix }).pipe(
        Layer.mapError(describe("cannot start the embedded DynamoDB engine"))
      ),
    onSome: (endpoint) =>
      DynamoDb.layerEndpoint({ endpoint, region: config.region, tablePrefix: config.tablePrefix })
  })

/** Local keyring under `home/keys`, or KMS when `AAP_KMS_KEY_ID` is set. */
export const layerKeys = (
  config: BrokerConfigShape
): Layer.Layer<KeyProvider.KeyProvider | import("@aap/key-custody").SystemKeys.SystemKeys, StartError> =>
  Option.match(config.kmsKeyId, {
    onNone: () =>
      KeyProvider.layerLocalKeyringFromHome(config.home).pipe(
        Layer.mapError(describe("cannot open the keyring"))
      ),
    onSome: (keyId) =>
      KeyProvider.layerAwsKms({
        keyId,
        region: config.region,
        systemRootPath: Path.join(config.home, "keys", "system-root.json")
      }).pipe(Layer.mapError(describe("cannot use the KMS key")))
  })

const bootstrapTables: Layer.Layer<never, StartError, DynamoDb.DynamoDb> = Layer.effectDiscard(
  DynamoDb.ensureTable(CoordinationStore.tableSpec).pipe(
    Effect.mapError(describe("cannot create the tables"))
  )
)

/** Replaceable parts (tests): the STS clients, e.g. mocked at the SDK boundary. */
export interface Options {
  readonly stsClients?: Layer.Layer<AwsCredentials.StsClients> | undefined
  /** Where JSON log lines go (default: stdout). */
  readonly logSink?: ((line: string) => void) | undefined
  /**
   * Work that runs in this process over the broker's own services, for as long as the broker
   * runs: `aap serve` passes the worker's jobs here in embedded mode (the engine's data
   * directory can be open in one process only).
   */
  readonly background?: Layer.Layer<never, BackgroundError, BackgroundServices> | undefined
}

/** Background work that cannot start says why in one line (no secret). */
export interface BackgroundError {
  readonly _tag: string
  readonly message: string
}

export type Services =
  | Readiness.Readiness
  | Authenticator
  | CatalogHolder.CatalogHolder
  | AuditReader.AuditReader
  | AuditLog.AuditLog
  | Sessions.Sessions
  | Identities.Identities
  | SessionCache
  | Delivery.Delivery
  | OidcIssuer.OidcIssuer
  | SecretStore.SecretStore
  | SecretCache
  | EgressProxy.EgressProxy
  | ForwardProxy.ForwardProxy

/** What in-process background work (`Options.background`) can use: the services and what they stand on. */
export type BackgroundServices =
  | Services
  | CoordinationStore.CoordinationStore
  | CurrentCatalog.CurrentCatalog
  | AuditSink.AuditSink
  | AuditKeys.AuditKeys
  | KeyProvider.KeyProvider
  | SystemKeys.SystemKeys
  | DynamoDb.DynamoDb
  | DeliveryPorts.Secrets
  | ProvisionedKeys.ProvisionedKeys
  | Provisioner.Provisioner

export const layerServices = (
  config: BrokerConfigShape,
  options: Options = {}
): Layer.Layer<BackgroundServices, StartError | BackgroundError, BrokerMetrics> => {
  const dynamo = layerDynamo(config)
  const keys = layerKeys(config)
  const catalog = CatalogHolder.layer(config.catalogPath).pipe(
    Layer.provide(NodeFileSystem.layer),
    Layer.mapError(describe(`cannot load the catalog ${config.catalogPath}`))
  )
  const currentCatalog = Layer.effect(
    CurrentCatalog.CurrentCatalog,
    Effect.map(CatalogHolder.CatalogHolder, (h) => ({ get: h.current }))
  )
  const auditKeys = AuditKeys.layerSystemKeys
  const auditSink =
    config.auditSink === "dynamodb"
      ? DynamoDbSink.layer.pipe(
          Layer.provide(dynamo),
          Layer.mapError(describe("cannot open the audit table"))
        )
      : JsonlSink.layer({ dir: Path.join(config.home, "audit") }).pipe(
          Layer.mapError(describe("cannot open the audit log"))
        )
  const instanceId =
    Os.hostname()
      .replace(/[^A-Za-z0-9-]/g, "-")
      .slice(0, 32) || "broker"
  const audit = Layer.mergeAll(
    layerTimedAudit.pipe(
      Layer.provide(
        AuditLog.layerWith({ instanceId }).pipe(Layer.mapError(describe("cannot open the audit log")))
      )
    ),
    AuditReader.layer
  ).pipe(Layer.provideMerge(auditSink), Layer.provideMerge(auditKeys))
  const store = CoordinationStore.layerDynamoDb.pipe(
    Layer.mapError(describe("cannot reach the coordination table")),
    Layer.provide(bootstrapTables)
  )
  const repos = Layer.mergeAll(IdentityRepository.layer, SessionRepository.layer).pipe(Layer.provide(store))
  const coordination = Layer.mergeAll(
    Identities.layer,
    Sessions.layer({
      maxLiveSessionsPerAgent: config.maxLiveSessionsPerAgent,
      requestsPerMinute: config.sessionRequestsPerMinute
    })
  ).pipe(Layer.provideMerge(repos), Layer.provide(currentCatalog))
  const auth = layerAuthenticator(config.cacheTtl)
  const vault = SecretStore.layerDynamoDb.pipe(Layer.mapError(describe("cannot reach the vault table")))
  const secrets = layerSecrets(config.secretCacheTtl).pipe(Layer.provide(vault))
  const sessionCache = layerSessionCache(config.cacheTtl)
  // The AAP_PROXY_* settings, read (CA files included) once for the proxy, its forward mode and
  // the HTTP mounts, which find them in the services.
  const proxySettings = layerProxySettings.pipe(
    Layer.mapError(describe("invalid proxy configuration (AAP_PROXY_*)"))
  )
  // The egress proxy (issue 12) over the same cached session and secret ports as delivery.
  const proxy = layerEgressProxy.pipe(
    Layer.provide(secrets),
    Layer.provide(currentCatalog),
    Layer.provide(proxySettings)
  )
  // Its forward mode (CONNECT / HTTPS_PROXY, ADR 0081), with TLS interception when an operator CA is set.
  // It draws blind tunnels on the same session budgets: `proxy` is shared by reference (one instance).
  const forward = layerForwardProxy.pipe(
    Layer.provide(proxy),
    Layer.provide(currentCatalog),
    Layer.provideMerge(proxySettings)
  )
  const provisioner = Provisioner.layerOpenRouter().pipe(Layer.provide(FetchHttpClient.layer))
  const provisionedKeys = ProvisionedKeys.layer.pipe(Layer.provide(store))
  const delivery = Delivery.layer.pipe(
    Layer.provideMerge(proxy),
    Layer.provideMerge(OidcIssuer.layer({ issuer: issuerUrl(config) }).pipe(Layer.provide(secrets))),
    Layer.provide(layerDeliverySessions),
    Layer.provide(options.stsClients ?? AwsCredentials.layerStsClients),
    Layer.provide(provisioner),
    Layer.provide(provisionedKeys),
    Layer.provide(
      Delivery.layerConfigWith({
        buckets: {
          vault_bucket: Option.getOrUndefined(config.vaultBucket),
          memory_bucket: Option.getOrUndefined(config.memoryBucket),
          audit_bucket: Option.getOrUndefined(config.auditBucket)
        }
      })
    ),
    Layer.provideMerge(secrets)
  )
  const readiness = Layer.effect(
    Readiness.Readiness,
    Effect.gen(function* () {
      const ddb = yield* DynamoDb.DynamoDb
      const provider = yield* KeyProvider.KeyProvider
      const reader = yield* AuditReader.AuditReader
      return {
        checks: [
          {
            name: "store",
            check: DynamoDb.ensureTable(CoordinationStore.tableSpec).pipe(
              Effect.provideService(DynamoDb.DynamoDb, ddb)
            )
          },
          { name: "keys", check: provider.describe() },
          { name: "audit", check: reader.streams }
        ]
      }
    })
  )
  const gauge = layerSessionGauge({ cap: 10_000, every: 15_000 })
  // Rollback marks from the audit log (ADR 0044), before the broker serves: every session
  // transition on record raises its session's mark (sessions past their deadline need none),
  // and every token revocation marks its fingerprint, so a restarted broker refuses an older,
  // validly MACed copy put back in the table.
  const rollbackMarks = Layer.effectDiscard(
    Effect.gen(function* () {
      const reader = yield* AuditReader.AuditReader
      const sessions = yield* SessionRepository.SessionRepository
      const identities = yield* IdentityRepository.IdentityRepository
      const started = Date.now()
      let marked = 0
      let revocations = 0
      const records = yield* reader
        .forEachAction(["session.", "token.revoked"], (event) => {
          const details = event.details ?? {}
          if (event.action === "token.revoked") {
            if (event.outcome === "success" && typeof details.fingerprint === "string") {
              identities.rememberRevoked(details.fingerprint)
              revocations++
            }
            return
          }
          const version = details.version
          const until = typeof details.expiresAt === "string" ? Date.parse(details.expiresAt) : Number.NaN
          if (event.session === undefined || typeof version !== "number" || !(until > started)) return
          sessions.remember(event.session, version, until)
          marked++
        })
        .pipe(Effect.mapError(describe("cannot read the audit log for rollback marks")))
      yield* Effect.logInfo("rollback marks seeded from the audit log").pipe(
        Effect.annotateLogs({ records, sessions: marked, revocations, ms: Date.now() - started })
      )
    })
  )
  // Layers are shared by reference within one build: `store`, `secrets`, `provisioner` and
  // the rest are built once, for the broker and its background work alike.
  const services = Layer.mergeAll(
    rollbackMarks,
    readiness,
    auth,
    delivery,
    forward,
    vault,
    gauge,
    provisioner,
    provisionedKeys,
    store
  ).pipe(
    Layer.provideMerge(coordination),
    Layer.provideMerge(currentCatalog),
    Layer.provideMerge(sessionCache),
    Layer.provideMerge(audit),
    Layer.provideMerge(catalog),
    Layer.provideMerge(keys),
    Layer.provideMerge(dynamo)
  )
  return options.background === undefined ? services : Layer.provideMerge(options.background, services)
}
