/**
 * Test stacks: the coordination services over a DynamoDB client (the embedded engine), with
 * a counter of the items every DynamoDB call read (from the responses' `ScannedCount` /
 * `Count`, GetItem = 1 when found) and of Scan calls, installed as SDK middleware.
 */
import {
  CoordinationStore,
  CurrentCatalog,
  type Session,
  SessionRepository,
  Sessions
} from "@aap/agent-coordination"
import { AuditKeys, AuditLog, AuditReader, JsonlSink } from "@aap/audit"
import { CatalogFile } from "@aap/catalog"
import { KeyProvider, type SystemKeys } from "@aap/key-custody"
import { DynamoDb } from "@aap/local-stack"
import { DateTime, Effect, Either, Layer } from "effect"
import * as Progress from "../../src/Progress.js"
import * as WorkerMetrics from "../../src/WorkerMetrics.js"

export const catalogYaml = `schemaVersion: 1
agents:
  - { id: codex, wallet: codex }
  - { id: claude, wallet: claude }
operators:
  - { id: alice }
capabilities:
  - id: openrouter-chat
    tier: low
    agents: [codex, claude]
    ttl: { default: 15m, max: 1h }
    backing: { type: bearer-token, secret: openrouter/api-key, env: OPENROUTER_API_KEY }
  - id: memory-s3
    tier: medium
    agents: [codex, claude]
    ttl: { default: 30m, max: 1h }
    backing:
      type: aws-sts
      roleArn: arn:aws:iam::123456789012:role/aap/aap-memory
      region: eu-central-1
      statements:
        - actions: [s3:GetObject]
          resources: ["arn:aws:s3:::\${memory_bucket}/\${wallet}/*"]
  - id: reports-s3
    tier: low
    agents: [codex]
    ttl: { default: 30m, max: 1h }
    backing:
      type: aws-sts
      roleArn: arn:aws:iam::123456789012:role/aap-reports
      region: eu-central-1
      statements:
        - actions: [s3:GetObject]
          resources: ["arn:aws:s3:::\${memory_bucket}/\${wallet}/*"]
`

export const catalog = Either.getOrThrow(CatalogFile.parse(catalogYaml))

export interface ReadCounter {
  /** Items read by Query/GetItem/Scan since the last reset. */
  readonly items: () => number
  readonly scans: () => number
  readonly reset: () => void
}

/** Adds the counting middleware to the client of a `DynamoDb` service (once per client). */
export const countReads = (shape: DynamoDb.DynamoDbShape): ReadCounter => {
  let items = 0
  let scans = 0
  shape.client.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args)
      const output = result.output as {
        ScannedCount?: number
        Count?: number
        Item?: unknown
        Responses?: Record<string, ReadonlyArray<unknown>>
      }
      switch (context.commandName) {
        case "QueryCommand":
          items += output.ScannedCount ?? output.Count ?? 0
          break
        case "ScanCommand":
          scans++
          items += output.ScannedCount ?? 0
          break
        case "GetItemCommand":
          items += output.Item === undefined ? 0 : 1
          break
        case "BatchGetItemCommand":
          for (const r of Object.values(output.Responses ?? {})) items += r.length
          break
      }
      return result
    },
    { step: "initialize", name: `aapReadCounter${Math.random()}` }
  )
  return {
    items: () => items,
    scans: () => scans,
    reset: () => {
      items = 0
      scans = 0
    }
  }
}

/** The coordination services over the provided `DynamoDb` and `SystemKeys`, audit in memory by default. */
export const coordination = <E, R, E2 = never, R2 = never>(
  keys: Layer.Layer<SystemKeys.SystemKeys | KeyProvider.KeyProvider, E, R>,
  audit: Layer.Layer<AuditLog.AuditLog | AuditReader.AuditReader, E2, R2> = AuditLog.layerMemory
) => {
  const store = CoordinationStore.layerDynamoDb
  const repos = SessionRepository.layer.pipe(Layer.provideMerge(store))
  return Sessions.layer().pipe(
    Layer.provideMerge(repos),
    Layer.provideMerge(Progress.layerCoordination.pipe(Layer.provide(store))),
    Layer.provideMerge(CurrentCatalog.layer(catalog)),
    Layer.provideMerge(audit),
    Layer.provideMerge(WorkerMetrics.layer),
    Layer.provideMerge(keys)
  )
}

let counter = 0
/** A fresh table prefix on a shared engine. */
export const freshTables = (shared: DynamoDb.DynamoDbShape): DynamoDb.DynamoDbShape => ({
  ...shared,
  tables: DynamoDb.tables(`w${process.pid}x${++counter}x${Date.now()}`)
})

export const memoryKeys = KeyProvider.layerMemory

/** A session with the given deadline, active. */
export const activeSession = (
  id: string,
  expiresAt: DateTime.Utc,
  options: { readonly capability?: string; readonly agent?: string } = {}
): Session.Session => {
  const created = DateTime.subtract(expiresAt, { minutes: 15 })
  return {
    id,
    agent: options.agent ?? "codex",
    wallet: options.agent ?? "codex",
    capability: options.capability ?? "openrouter-chat",
    tier: "low",
    status: "active",
    version: 2,
    ttlSeconds: 900,
    createdAt: created,
    updatedAt: created,
    expiresAt,
    activatedAt: created,
    breakGlass: false,
    requiredApprovals: 0,
    approvals: []
  }
}

const B32 = "0123456789abcdefghjkmnpqrstvwxyz"
/** A deterministic session id `ses_` + 26 base32 characters from a number. */
export const sessionId = (n: number, salt = 0): string => {
  let v = BigInt(n) * 1_000_003n + BigInt(salt)
  let out = ""
  for (let i = 0; i < 26; i++) {
    out = B32[Number(v & 31n)] + out
    v >>= 5n
  }
  return `ses_${out}`
}

export const runLive = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)

/** The JSONL audit log under `dir`, keys from the system keys (durable across processes). */
export const jsonlAudit = (dir: string, instanceId: string) =>
  Layer.mergeAll(AuditLog.layerWith({ instanceId }), AuditReader.layer).pipe(
    Layer.provide(JsonlSink.layer({ dir })),
    Layer.provide(AuditKeys.layerSystemKeys)
  )
