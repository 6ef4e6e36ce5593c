/**
 * The standalone worker (`aap worker`): reads the environment (`WorkerConfig.fromEnv`),
 * composes the same services as the broker, runs every configured job on its schedule and
 * serves `/healthz` and `/metrics`. Interrupting it (SIGTERM/SIGINT in `main.ts`) closes the
 * scope: the loops stop, the audit writer seals its stream, the engine closes.
 *
 * In embedded mode the broker runs these jobs itself (the engine's data directory can be open
 * in one process only); a standalone worker is for deployments with a DynamoDB endpoint.
 *
 * @since 0.1.0
 */
import * as Os from "node:os"
import * as Path from "node:path"
import {
  CoordinationStore,
  CurrentCatalog,
  DeliveryPorts,
  ProvisionedKeys,
  Provisioner,
  SessionRepository,
  Sessions
} from "@aap/agent-coordination"
import { AuditKeys, AuditLog, AuditReader, JsonlSink } from "@aap/audit"
import { type Catalog, CatalogFile } from "@aap/catalog"
import { KeyProvider } from "@aap/key-custody"
import { DynamoDb } from "@aap/local-stack"
import { SecretStore } from "@aap/vault"
import { FetchHttpClient } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { Data, Effect, Layer, Option } from "effect"
import * as AuditShipping from "./AuditShipping.js"
import * as Rewrap from "./Rewrap.js"
import * as StsDenyList from "./StsDenyList.js"
import * as UpstreamRevocation from "./UpstreamRevocation.js"
import type * as Worker from "./Worker.js"
import { makeWorker } from "./Worker.js"
import * as WorkerConfig from "./WorkerConfig.js"
import * as WorkerHttp from "./WorkerHttp.js"
import type * as WorkerMetrics from "./WorkerMetrics.js"

/** The worker could not start; the message names what and why. */
export class StartError extends Data.TaggedError("StartError")<{ readonly message: string }> {}

const describe =
  (what: string) =>
  (e: unknown): StartError =>
    new StartError({
      message: `${what}: ${
        typeof e === "object" && e !== null && "message" in e && typeof e.message === "string"
          ? e.message
          : typeof e === "object" && e !== null && "_tag" in e
            ? String(e._tag)
            : String(e)
      }`
    })

/**
 * Every job over services the caller provides (the standalone worker's own, or the embedded
 * broker's): the jobs' optional dependencies chosen by the configuration — the IAM client for
 * the STS deny list (on, or auto with a Class A capability), the audit bucket when
 * `AAP_AUDIT_BUCKET` is set — and the vault table for re-wrap.
 */
const jobs = (
  config: WorkerConfig.StandaloneConfig,
  catalog: Catalog.Catalog
): Layer.Layer<
  Worker.Worker | WorkerMetrics.WorkerMetrics,
  never,
  | Worker.Requirements
  | DynamoDb.DynamoDb
  | UpstreamRevocation.ProvisionedKeyStore
  | UpstreamRevocation.UpstreamRevoker
> => {
  const hasClassA = catalog.capabilities.some((c) => c.backing.type === "aws-sts")
  const iam =
    config.stsDeny === "on" || (config.stsDeny === "auto" && hasClassA)
      ? StsDenyList.layerIam({ region: config.region })
      : Layer.empty
  const bucket = Option.match(config.auditBucket, {
    onNone: () => Layer.empty,
    onSome: (name) =>
      AuditShipping.layerBucket({
        bucket: name,
        lockMode: config.lockMode,
        retentionDays: config.retentionDays,
        client: AuditShipping.s3Config({
          endpoint: Option.getOrUndefined(config.s3Endpoint),
          region: config.region
        })
      })
  })
  return makeWorker(config.jobs).pipe(Layer.provide(Layer.mergeAll(iam, bucket, Rewrap.layerVaultTable)))
}

/**
 * The jobs in the embedded broker's process, over the broker's own services and its catalog (`aap serve`
 * passes this as the broker's background work). The worker's metrics and status are not
 * served there (`aap worker` serves them); its log lines and audit records are the same.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerInProcess = (
  config: WorkerConfig.StandaloneConfig
): Layer.Layer<
  never,
  never,
  | Worker.Requirements
  | DynamoDb.DynamoDb
  | ProvisionedKeys.ProvisionedKeys
  | Provisioner.Provisioner
  | DeliveryPorts.Secrets
> =>
  // The catalog the broker already loaded (no second read of the file).
  Layer.scopedDiscard(
    Effect.flatMap(CurrentCatalog.CurrentCatalog, (current) => current.get).pipe(
      Effect.flatMap((catalog) =>
        Layer.build(jobs(config, catalog).pipe(Layer.provide(UpstreamRevocation.layerCoordination)))
      )
    )
  )

/**
 * The whole standalone worker from the environment: services, jobs and the listener. It runs
 * until interrupted; start problems fail with {@link StartError} (one line, no secret).
 */
export const run: Effect.Effect<never, StartError> = Effect.gen(function* () {
  const config = yield* WorkerConfig.fromEnv.pipe(Effect.mapError(describe("invalid configuration")))
  const catalog = yield* CatalogFile.load(config.catalogPath).pipe(
    Effect.provide(NodeFileSystem.layer),
    Effect.mapError(describe(`cannot load the catalog ${config.catalogPath}`))
  )
  const dynamo = Option.match(config.dynamodbEndpoint, {
    onNone: () =>
      DynamoDb.layerEmbedded({ dir: Path.join(config.home, "data"), tablePrefix: config.tablePrefix }).pipe(
        Layer.mapError(
          describe(
            "cannot open the embedded engine (in embedded mode the broker runs the worker in-process; a standalone worker needs AAP_DYNAMODB_ENDPOINT)"
          )
        )
      ),
    onSome: (endpoint) =>
      endpoint === "aws"
        ? DynamoDb.layerAws({ region: config.region, tablePrefix: config.tablePrefix })
        : DynamoDb.layerEndpoint({ endpoint, region: config.region, tablePrefix: config.tablePrefix })
  })
  const keys = Option.match(config.kmsKeyId, {
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
  const audit = Layer.mergeAll(
    AuditLog.layerWith({
      instanceId: `worker-${Os.hostname()
        .replace(/[^a-z0-9-]/gi, "-")
        .toLowerCase()}`.slice(0, 40)
    }),
    AuditReader.layer
  ).pipe(
    Layer.provideMerge(JsonlSink.layer({ dir: Path.join(config.home, "audit") })),
    Layer.provideMerge(AuditKeys.layerSystemKeys),
    Layer.mapError(describe("cannot open the audit log"))
  )
  const store = CoordinationStore.layerDynamoDb.pipe(
    Layer.mapError(describe("cannot reach the coordination table"))
  )
  const vault = SecretStore.layerDynamoDb.pipe(Layer.mapError(describe("cannot reach the vault table")))
  // Provisioned upstream keys: the records in the coordination table, the OpenRouter adapter,
  // management keys from the vault.
  const revocation = UpstreamRevocation.layerCoordination.pipe(
    Layer.provide(ProvisionedKeys.layer),
    Layer.provide(Provisioner.layerOpenRouter()),
    Layer.provide(FetchHttpClient.layer),
    Layer.provide(DeliveryPorts.secretsFromVault),
    Layer.provide(vault)
  )
  const services = Layer.merge(Sessions.layer(), revocation).pipe(
    Layer.provideMerge(SessionRepository.layer),
    Layer.provideMerge(store),
    Layer.provideMerge(CurrentCatalog.layer(catalog)),
    Layer.provideMerge(audit),
    Layer.provideMerge(keys),
    Layer.provide(dynamo)
  )
  // The same `dynamo` value as the services': layers are shared by reference, one engine.
  const worker = jobs(config, catalog).pipe(Layer.provide(dynamo))
  const app = WorkerHttp.layer(config.listen).pipe(
    Layer.provideMerge(worker),
    Layer.provide(services),
    Layer.mapError((e) => (e._tag === "ListenError" ? new StartError({ message: e.message }) : e))
  )
  return yield* Layer.launch(app)
}).pipe(
  Effect.catchAll((e) =>
    Effect.fail(e._tag === "StartError" ? e : new StartError({ message: "cannot start the worker" }))
  )
)
