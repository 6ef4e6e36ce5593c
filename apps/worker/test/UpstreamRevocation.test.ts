import {
  CoordinationStore,
  DeliveryPorts,
  ProvisionedKeys,
  Provisioner,
  SessionRepository
} from "@aap/agent-coordination"
import { AuditReader } from "@aap/audit"
import { DynamoDb } from "@aap/local-stack"
import { FetchHttpClient } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { DateTime, Effect, Layer } from "effect"
import * as UpstreamRevocation from "../src/UpstreamRevocation.js"
import { WorkerMetrics } from "../src/WorkerMetrics.js"
import * as FakeOpenRouter from "./support/fakeOpenRouter.js"
import { activeSession, coordination, freshTables, memoryKeys, sessionId } from "./support/stack.js"

const CANARY = "sk-or-v1-mgmt-CANARY-7f3e9a1c55d04b2e"

const engine = DynamoDb.layerEmbedded()

/** Runs `body` with the coordination services on a fresh table, a fake OpenRouter and key records. */
const withStack = <A, E, R>(
  keys: (now: number) => ReadonlyArray<UpstreamRevocation.ProvisionedKey>,
  body: (fake: FakeOpenRouter.FakeOpenRouter, now: number) => Effect.Effect<A, E, R>
) =>
  Effect.gen(function* () {
    const shared = yield* DynamoDb.DynamoDb
    const fake = yield* FakeOpenRouter.make(CANARY)
    const now = Math.floor(Date.now() / 1000)
    const records = keys(now)
    for (const k of records) fake.live.add(k.hash)
    const revoker = UpstreamRevocation.layerOpenRouter({ baseUrl: fake.baseUrl, timeout: "2 seconds" }).pipe(
      Layer.provide(FetchHttpClient.layer),
      Layer.provide(UpstreamRevocation.layerManagementKeys([["codex", "openrouter/management", CANARY]]))
    )
    return yield* body(fake, now).pipe(
      Effect.provide(
        Layer.mergeAll(coordination(memoryKeys), revoker, UpstreamRevocation.layerMemoryStore(records))
      ),
      Effect.provideService(DynamoDb.DynamoDb, freshTables(shared))
    )
  }).pipe(Effect.scoped, Effect.provide(engine))

const key = (session: string, hash: string, expiresAt: number): UpstreamRevocation.ProvisionedKey => ({
  session,
  provider: "openrouter",
  hash,
  wallet: "codex",
  capability: "openrouter-chat",
  managementSecret: "openrouter/management",
  createdAt: expiresAt - 900,
  expiresAt
})

const revokedSession = sessionId(1, 31)
const endedSession = sessionId(2, 31)
const liveSession = sessionId(3, 31)

const threeKeys = (now: number) => [
  key(revokedSession, "hash-revoked", now + 600), // session revoked early
  key(endedSession, "hash-ended", now - 10), // session deadline passed
  key(liveSession, "hash-live", now + 600) // still in use: must not be touched
]

/** Stores the revoked session in the coordination table (the others need no session item). */
const seedRevoked = Effect.gen(function* () {
  const repo = yield* SessionRepository.SessionRepository
  const now = yield* DateTime.now
  const s = activeSession(revokedSession, DateTime.add(now, { minutes: 10 }))
  yield* repo.create({
    ...s,
    status: "revoked",
    version: 3,
    ended: { by: { type: "agent", id: "codex" }, at: DateTime.subtract(now, { seconds: 30 }) }
  })
  yield* repo.create(activeSession(liveSession, DateTime.add(now, { minutes: 10 })))
})

const events = Effect.flatMap(AuditReader.AuditReader, (r) =>
  r.query({ action: "credential.revoked", limit: 1000 })
)

describe("UpstreamRevocation", () => {
  it.live(
    "revokes the keys of revoked and ended sessions, retrying with backoff through provider errors",
    () =>
      withStack(threeKeys, (fake) =>
        Effect.gen(function* () {
          yield* seedRevoked
          fake.script.push(503, "drop", 200, 429, 200)
          const result = yield* UpstreamRevocation.run({ attemptsPerRun: 3, backoffBase: "20 millis" })
          assert.deepStrictEqual(result, { revoked: 2, failed: 0, gaveUp: 0 })
          assert.deepStrictEqual(
            fake.calls.map((c) => c.path),
            [
              "/api/v1/keys/hash-revoked",
              "/api/v1/keys/hash-revoked",
              "/api/v1/keys/hash-revoked",
              "/api/v1/keys/hash-ended",
              "/api/v1/keys/hash-ended"
            ]
          )
          assert.isTrue(
            fake.calls.every((c) => c.method === "DELETE" && c.authorization === `Bearer ${CANARY}`)
          )
          assert.deepStrictEqual([...fake.live], ["hash-live"])
          const view = yield* UpstreamRevocation.MemoryStoreView
          const all = yield* view.all
          assert.deepStrictEqual(
            all.map((k) => [k.hash, k.revokedAt !== undefined]),
            [
              ["hash-revoked", true],
              ["hash-ended", true],
              ["hash-live", false]
            ]
          )
          const audited = yield* events
          assert.deepStrictEqual(
            audited.map((e) => [e.session, e.outcome, e.details.keyHash]).sort(),
            [
              [revokedSession, "success", "hash-revoked"],
              [endedSession, "success", "hash-ended"]
            ].sort()
          )
          const metrics = yield* WorkerMetrics
          assert.strictEqual(
            yield* metrics.get("aap_worker_upstream_revocation_attempts_total", { result: "error" }),
            3
          )
          assert.strictEqual(
            yield* metrics.get("aap_worker_upstream_revocations_total", { outcome: "success" }),
            2
          )
          // Idempotent: a second run has nothing to do.
          const again = yield* UpstreamRevocation.run({ backoffBase: "20 millis" })
          assert.deepStrictEqual(again, { revoked: 0, failed: 0, gaveUp: 0 })
          assert.strictEqual(fake.calls.length, 5)
          assert.notInclude(JSON.stringify(audited), CANARY)
        })
      )
  )

  it.live("gives up loudly after the bound, counted across runs, exactly once", () =>
    withStack(threeKeys, (fake) =>
      Effect.gen(function* () {
        yield* seedRevoked
        fake.fallback = 503
        const options = { attemptsPerRun: 2, maxAttempts: 3, backoffBase: "10 millis" } as const
        const first = yield* UpstreamRevocation.run(options)
        assert.deepStrictEqual(first, { revoked: 0, failed: 2, gaveUp: 0 })
        assert.strictEqual(fake.calls.length, 4)
        assert.deepStrictEqual(yield* events, [])
        // The second run has one try left per key, then gives up.
        const second = yield* UpstreamRevocation.run(options)
        assert.deepStrictEqual(second, { revoked: 0, failed: 0, gaveUp: 2 })
        assert.strictEqual(fake.calls.length, 6)
        const audited = yield* events
        assert.deepStrictEqual(
          audited.map((e) => [e.session, e.outcome, e.reason, e.details.attempts]).sort(),
          [
            [revokedSession, "error", "gave-up:unreachable", 3],
            [endedSession, "error", "gave-up:unreachable", 3]
          ].sort()
        )
        const metrics = yield* WorkerMetrics
        assert.strictEqual(
          yield* metrics.get("aap_worker_upstream_revocations_total", { outcome: "gave_up" }),
          2
        )
        // A third run neither calls the provider nor audits again.
        const third = yield* UpstreamRevocation.run(options)
        assert.deepStrictEqual(third, { revoked: 0, failed: 0, gaveUp: 0 })
        assert.strictEqual(fake.calls.length, 6)
        assert.strictEqual((yield* events).length, 2)
        assert.notInclude(JSON.stringify(audited), CANARY)
      })
    )
  )

  it.live("a refusal (4xx) is not retried: it gives up at once", () =>
    withStack(
      (now) => [key(endedSession, "hash-ended", now - 10)],
      (fake) =>
        Effect.gen(function* () {
          fake.fallback = 403
          const result = yield* UpstreamRevocation.run({ attemptsPerRun: 5, backoffBase: "10 millis" })
          assert.deepStrictEqual(result, { revoked: 0, failed: 0, gaveUp: 1 })
          assert.strictEqual(fake.calls.length, 1)
          const audited = yield* events
          assert.deepStrictEqual(
            audited.map((e) => [e.outcome, e.reason]),
            [["error", "gave-up:refused:403"]]
          )
        })
    )
  )

  it.live("a key already gone upstream (404) counts as revoked", () =>
    withStack(
      (now) => [key(endedSession, "hash-ended", now - 10)],
      (fake) =>
        Effect.gen(function* () {
          fake.live.clear()
          const result = yield* UpstreamRevocation.run({ backoffBase: "10 millis" })
          assert.deepStrictEqual(result, { revoked: 1, failed: 0, gaveUp: 0 })
        })
    )
  )
})

describe("UpstreamRevocation on the coordination context's records and OpenRouter adapter", () => {
  it.live("revokes through ProvisionedKeys (dynalite) + Provisioner + Secrets and marks the records", () =>
    Effect.gen(function* () {
      const shared = yield* DynamoDb.DynamoDb
      const fake = yield* FakeOpenRouter.make(CANARY)
      const records = ProvisionedKeys.layer.pipe(Layer.provide(CoordinationStore.layerDynamoDb))
      const adapters = UpstreamRevocation.layerCoordination.pipe(
        Layer.provideMerge(records),
        Layer.provide(Provisioner.layerOpenRouter({ baseUrl: fake.baseUrl, timeout: "2 seconds" })),
        Layer.provide(FetchHttpClient.layer),
        Layer.provide(DeliveryPorts.secretsMemory([["codex", "openrouter/management", CANARY]]))
      )
      yield* Effect.gen(function* () {
        yield* seedRevoked
        const now = Math.floor(Date.now() / 1000)
        const pk = yield* ProvisionedKeys.ProvisionedKeys
        for (const k of threeKeys(now)) {
          fake.live.add(k.hash)
          yield* pk.record(k)
        }
        fake.script.push(502)
        const result = yield* UpstreamRevocation.run({ backoffBase: "10 millis" })
        assert.deepStrictEqual(result, { revoked: 2, failed: 0, gaveUp: 0 })
        assert.deepStrictEqual([...fake.live], ["hash-live"])
        for (const session of [revokedSession, endedSession]) {
          const [k] = yield* pk.forSession(session)
          assert.isDefined(k?.revokedAt)
        }
        assert.isUndefined((yield* pk.forSession(liveSession))[0]?.revokedAt)
        // The due index no longer lists them: a second run does nothing.
        assert.deepStrictEqual(yield* UpstreamRevocation.run({ backoffBase: "10 millis" }), {
          revoked: 0,
          failed: 0,
          gaveUp: 0
        })
        assert.strictEqual(fake.calls.length, 3)
        assert.notInclude(JSON.stringify(yield* events), CANARY)
      }).pipe(
        Effect.provide(Layer.provideMerge(adapters, coordination(memoryKeys))),
        Effect.provideService(DynamoDb.DynamoDb, freshTables(shared))
      )
    }).pipe(Effect.scoped, Effect.provide(engine))
  )

  it.live("a missing management secret is not retried", () =>
    Effect.gen(function* () {
      const shared = yield* DynamoDb.DynamoDb
      const fake = yield* FakeOpenRouter.make(CANARY)
      const adapters = UpstreamRevocation.layerCoordination.pipe(
        Layer.provideMerge(ProvisionedKeys.layer.pipe(Layer.provide(CoordinationStore.layerDynamoDb))),
        Layer.provide(Provisioner.layerOpenRouter({ baseUrl: fake.baseUrl })),
        Layer.provide(FetchHttpClient.layer),
        Layer.provide(DeliveryPorts.secretsMemory([]))
      )
      yield* Effect.gen(function* () {
        const pk = yield* ProvisionedKeys.ProvisionedKeys
        yield* pk.record(key(endedSession, "hash-ended", Math.floor(Date.now() / 1000) - 5))
        const result = yield* UpstreamRevocation.run({ attemptsPerRun: 5, backoffBase: "10 millis" })
        assert.deepStrictEqual(result, { revoked: 0, failed: 0, gaveUp: 1 })
        assert.strictEqual(fake.calls.length, 0)
      }).pipe(
        Effect.provide(Layer.provideMerge(adapters, coordination(memoryKeys))),
        Effect.provideService(DynamoDb.DynamoDb, freshTables(shared))
      )
    }).pipe(Effect.scoped, Effect.provide(engine))
  )
})
