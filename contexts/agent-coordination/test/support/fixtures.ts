import { randomBytes } from "node:crypto"
import { AuditLog } from "@aap/audit"
import { CatalogFile } from "@aap/catalog"
import { SystemKeys } from "@aap/key-custody"
import { DynamoDb } from "@aap/local-stack"
import { Effect, Either, Layer, Redacted } from "effect"
import * as TestServices from "effect/TestServices"
import * as Coordination from "../../src/Coordination.js"
import * as CoordinationStore from "../../src/CoordinationStore.js"
import * as CurrentCatalog from "../../src/CurrentCatalog.js"
import * as Principal from "../../src/Principal.js"
import type * as Sessions from "../../src/Sessions.js"

export const catalogYaml = `schemaVersion: 1
agents:
  - { id: codex, wallet: codex }
  - { id: claude, wallet: claude }
operators:
  - { id: alice }
  - { id: bob }
  - { id: carol }
capabilities:
  - id: openrouter-chat
    tier: low
    agents: [codex, claude]
    ttl: { default: 15m, max: 1h }
    backing: { type: bearer-token, secret: openrouter/api-key, env: OPENROUTER_API_KEY }
  - id: forge-token
    tier: medium
    agents: [codex]
    ttl: { default: 30m, max: 1h }
    backing: { type: bearer-token, secret: forge/pat, env: FORGE_TOKEN }
  - id: ssh-platform-host
    tier: high
    agents: [codex]
    ttl: { default: 10m, max: 30m }
    backing: { type: ssh-certificate, principals: [deploy], ca: ssh/ca-key }
  - id: break-glass-admin
    tier: critical
    agents: [codex]
    approvals: 2
    ttl: { default: 5m, max: 15m }
    backing: { type: bearer-token, secret: admin/token, env: ADMIN_TOKEN }
`

export const catalog = Either.getOrThrow(CatalogFile.parse(catalogYaml))

export const codex = Principal.agent("codex", "codex")
export const claude = Principal.agent("claude", "claude")
export const alice = Principal.operator("alice")
export const bob = Principal.operator("bob")
export const carol = Principal.operator("carol")
export const mallory = Principal.operator("mallory")

/**
 * The in-memory audit log built with the live clock: its writer polls deadlines on a short
 * timer, so under `TestClock` an `adjust("1 hour")` would have to run tens of thousands of
 * ticks. Event timestamps then come from the live clock; our tests never assert on them.
 */
const auditLive = Layer.scopedContext(TestServices.provideLive(Layer.build(AuditLog.layerMemory)))

/** The services over a given store, with in-memory keys and audit log. */
export const services = <R = never>(
  store: Layer.Layer<CoordinationStore.CoordinationStore, unknown, R>,
  limits: Partial<Sessions.Limits> = {}
) =>
  Coordination.layerWith(store, limits).pipe(
    Layer.provideMerge(CurrentCatalog.layer(catalog)),
    Layer.provideMerge(auditLive),
    // a fixed root per build: `SystemKeys.layerMemory` is `Layer.fresh`, so under
    // `provideMerge` the repositories and the output would get different keys
    Layer.provideMerge(SystemKeys.layerFromRoot(Redacted.make(new Uint8Array(randomBytes(32)))))
  )

let counter = 0

/**
 * A DynamoDB-backed store on the shared embedded engine, with its own table (unique prefix).
 * The table is created with the live clock, so the store also works under `TestClock`.
 */
export const dynamoStore: Layer.Layer<CoordinationStore.CoordinationStore, unknown, DynamoDb.DynamoDb> =
  Layer.effect(
    CoordinationStore.CoordinationStore,
    Effect.flatMap(DynamoDb.DynamoDb, (shared) =>
      TestServices.provideLive(
        Effect.flatMap(CoordinationStore.CoordinationStore, Effect.succeed).pipe(
          Effect.provide(CoordinationStore.layerDynamoDb),
          Effect.provideService(DynamoDb.DynamoDb, {
            ...shared,
            tables: DynamoDb.tables(`t${process.pid}x${++counter}x${Date.now()}`)
          })
        )
      )
    )
  )

/** One embedded engine per test file (built with the live clock). */
export const engine: Layer.Layer<DynamoDb.DynamoDb, unknown> = DynamoDb.layerEmbedded()
