/**
 * The services of the upstream revocation, audit shipping and STS deny list jobs over durable
 * state (the on-disk embedded engine, the keyring file, the JSONL audit log), wired as
 * `Standalone.ts` wires them. The convergence-after-kill child (`jobChild.ts`) and the test's
 * own restart build the same layers, so the second run sees exactly what the killed one left.
 */
import { CoordinationStore, DeliveryPorts, ProvisionedKeys, Provisioner } from "@aap/agent-coordination"
import { AuditKeys, AuditReader, JsonlSink } from "@aap/audit"
import { KeyProvider } from "@aap/key-custody"
import { DynamoDb } from "@aap/local-stack"
import { SecretStore } from "@aap/vault"
import { FetchHttpClient } from "@effect/platform"
import { Layer } from "effect"
import * as AuditShipping from "../../src/AuditShipping.js"
import * as Progress from "../../src/Progress.js"
import * as StsDenyList from "../../src/StsDenyList.js"
import * as UpstreamRevocation from "../../src/UpstreamRevocation.js"
import * as WorkerMetrics from "../../src/WorkerMetrics.js"
import { coordination, jsonlAudit } from "./stack.js"

/** Where the durable state lives; the same for the child and the restart. */
export interface Durable {
  readonly dataDir: string
  readonly keyringPath: string
  readonly auditDir: string
  readonly tablePrefix: string
}

export const BUCKET = "aap-audit"
export const S3RVER_CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" }
export const MANAGEMENT_SECRET = "openrouter/management"

const engine = (d: Durable) => DynamoDb.layerEmbedded({ dir: d.dataDir, tablePrefix: d.tablePrefix })
const keyring = (d: Durable) => KeyProvider.layerLocalKeyring({ path: d.keyringPath })

/**
 * The coordination services (JSONL audit as `instance`) with the vault, the provisioned-key
 * records, the OpenRouter adapter at `openRouter` and the management key read from the vault.
 */
export const revocation = (d: Durable, instance: string, openRouter: string) => {
  const keys = keyring(d)
  const ports = UpstreamRevocation.layerCoordination.pipe(
    Layer.provideMerge(ProvisionedKeys.layer),
    // Long enough that a held request is never abandoned before the test kills the process.
    Layer.provide(Provisioner.layerOpenRouter({ baseUrl: openRouter, timeout: "60 seconds" })),
    Layer.provide(FetchHttpClient.layer),
    Layer.provide(DeliveryPorts.secretsFromVault)
  )
  return ports.pipe(
    Layer.provideMerge(SecretStore.layerDynamoDb),
    Layer.provideMerge(coordination(keys, jsonlAudit(d.auditDir, instance).pipe(Layer.provide(keys)))),
    Layer.provide(engine(d))
  )
}

/**
 * The audit sink, reader and checkpoint keys (no writer: the job opens no stream of its own),
 * the audit bucket at `s3`, the progress markers in the coordination table.
 */
export const shipping = (d: Durable, s3: string) =>
  Layer.mergeAll(
    AuditReader.layer.pipe(
      Layer.provideMerge(JsonlSink.layer({ dir: d.auditDir })),
      Layer.provideMerge(AuditKeys.layerSystemKeys)
    ),
    AuditShipping.layerBucket({
      bucket: BUCKET,
      client: AuditShipping.s3Config({ endpoint: s3, credentials: S3RVER_CREDENTIALS })
    }),
    Progress.layerCoordination.pipe(Layer.provideMerge(CoordinationStore.layerDynamoDb)),
    WorkerMetrics.layer
  ).pipe(Layer.provideMerge(keyring(d)), Layer.provide(engine(d)))

/** The coordination services (audit in memory: the job writes none) and an IAM client at `iam`. */
export const stsDeny = (d: Durable, iam: string) =>
  Layer.merge(
    coordination(keyring(d)),
    StsDenyList.layerIam({
      endpoint: iam,
      region: "us-east-1",
      credentials: { accessKeyId: "AKIDFAKE", secretAccessKey: "fake" },
      maxAttempts: 1
    })
  ).pipe(Layer.provide(engine(d)))
