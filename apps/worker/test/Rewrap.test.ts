import { AuditReader } from "@aap/audit"
import { KeyProvider } from "@aap/key-custody"
import { DynamoDb } from "@aap/local-stack"
import { SecretStore } from "@aap/vault"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import * as Rewrap from "../src/Rewrap.js"
import { WorkerMetrics } from "../src/WorkerMetrics.js"
import { coordination, freshTables, memoryKeys } from "./support/stack.js"

const COUNT = 230

/** DEKs generated under the current key, stored in the memory DEK store, then a rotation. */
const withDeks = <A, E, R>(body: (plaintexts: Map<string, Uint8Array>) => Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const shared = yield* DynamoDb.DynamoDb
    const services = coordination(memoryKeys)
    return yield* Effect.gen(function* () {
      const provider = yield* KeyProvider.KeyProvider
      const deks: Array<Rewrap.WrappedDek> = []
      const plaintexts = new Map<string, Uint8Array>()
      for (let i = 0; i < COUNT; i++) {
        const context = { wallet: i % 2 === 0 ? "codex" : "claude", purpose: "vault" }
        const key = yield* provider.generateDataKey(context)
        const id = `wallet#${context.wallet}/secret#s${String(i).padStart(4, "0")}#v000000001`
        plaintexts.set(id, new Uint8Array(Redacted.value(key.plaintext)))
        deks.push({ id, context, wrapped: key.wrapped, keyId: key.keyId })
      }
      yield* provider.rotate()
      return yield* body(plaintexts).pipe(Effect.provide(Rewrap.layerMemoryDeks(deks)))
    }).pipe(Effect.provide(services), Effect.provideService(DynamoDb.DynamoDb, freshTables(shared)))
  }).pipe(Effect.provide(DynamoDb.layerEmbedded()))

/** DEKs whose key id is the one a fresh DEK of their wallet gets now (the current KEK version). */
const onPrimary = Effect.gen(function* () {
  const provider = yield* KeyProvider.KeyProvider
  const current = new Map<string, string>()
  for (const wallet of ["codex", "claude"]) {
    current.set(wallet, (yield* provider.generateDataKey({ wallet, purpose: "vault" })).keyId)
  }
  const all = yield* Effect.flatMap(Rewrap.MemoryDeks, (m) => m.all)
  return all.filter((d) => d.keyId === current.get(d.context.wallet)).length
})

const rewrapEvents = Effect.flatMap(AuditReader.AuditReader, (r) =>
  r.query({ action: "key.rewrapped", limit: 100 })
)

describe("Rewrap", () => {
  it.live("resumes halfway from its progress marker and finishes the pass once", () =>
    withDeks((plaintexts) =>
      Effect.gen(function* () {
        const first = yield* Rewrap.run({ pageSize: 50, maxPages: 2 })
        assert.deepInclude(first, { moved: 100, seen: 100, done: false, passMoved: 100, passSeen: 100 })
        assert.strictEqual(yield* onPrimary, 100)
        assert.deepStrictEqual(yield* rewrapEvents, [])

        const second = yield* Rewrap.run({ pageSize: 50 })
        // Resumed after the marker: the first 100 are not even looked at again.
        assert.deepInclude(second, {
          moved: COUNT - 100,
          seen: COUNT - 100,
          done: true,
          passMoved: COUNT,
          passSeen: COUNT
        })
        assert.strictEqual(yield* onPrimary, COUNT)
        // Every DEK still opens to the same key under the new primary.
        const provider = yield* KeyProvider.KeyProvider
        for (const d of yield* Effect.flatMap(Rewrap.MemoryDeks, (m) => m.all)) {
          const plain = yield* provider.decryptDataKey(d.context, d.wrapped, d.keyId)
          assert.deepStrictEqual(new Uint8Array(Redacted.value(plain)), plaintexts.get(d.id))
        }
        const events = yield* rewrapEvents
        assert.strictEqual(events.length, 1)
        assert.deepInclude(events[0]?.details ?? {}, {
          deks: COUNT,
          moved: COUNT,
          primaryKeyId: second.primaryKeyId
        })
        assert.strictEqual(
          yield* Effect.flatMap(WorkerMetrics, (m) => m.get("aap_worker_rewrap_total")),
          COUNT
        )

        // Done: a further run does nothing and audits nothing.
        const third = yield* Rewrap.run({ pageSize: 50 })
        assert.deepInclude(third, { moved: 0, seen: 0, done: true })
        assert.strictEqual((yield* rewrapEvents).length, 1)

        // A new rotation starts a new pass.
        yield* provider.rotate()
        const fourth = yield* Rewrap.run({ pageSize: 50 })
        assert.deepInclude(fourth, { moved: COUNT, done: true })
        assert.strictEqual(yield* onPrimary, COUNT)
        assert.strictEqual((yield* rewrapEvents).length, 2)
      })
    )
  )

  it.live("a run that fails mid-page resumes at the page's start; DEKs already moved cost a read only", () =>
    withDeks(() =>
      Effect.gen(function* () {
        const control = yield* Rewrap.MemoryDeks
        yield* control.failAfter(70)
        const failed = yield* Effect.flip(Rewrap.run({ pageSize: 50 }))
        assert.strictEqual(failed._tag, "DekStoreError")
        assert.strictEqual(yield* onPrimary, 70)
        yield* control.failAfter(Number.POSITIVE_INFINITY)
        const resumed = yield* Rewrap.run({ pageSize: 50 })
        // The marker was at 50: the second page is read again, its 20 moved DEKs are not written.
        assert.deepInclude(resumed, {
          moved: COUNT - 70,
          seen: COUNT - 50,
          done: true,
          passMoved: COUNT - 20
        })
        assert.strictEqual(yield* onPrimary, COUNT)
        assert.strictEqual((yield* rewrapEvents).length, 1)
      })
    )
  )
})

describe("Rewrap on the vault's table", () => {
  it.live("moves every envelope's DEK to the current key; the vault still opens every secret", () =>
    Effect.gen(function* () {
      const shared = yield* DynamoDb.DynamoDb
      const shape = freshTables(shared)
      yield* Effect.gen(function* () {
        const vault = yield* SecretStore.SecretStore
        const provider = yield* KeyProvider.KeyProvider
        const values = new Map<string, string>()
        for (let i = 0; i < 24; i++) {
          const wallet = i % 3 === 0 ? "claude" : "codex"
          const name = `team/secret-${i}`
          const value = `value-${i}-${"x".repeat(i)}`
          yield* vault.put(wallet, name, Redacted.make(value))
          if (i % 4 === 0) yield* vault.put(wallet, name, Redacted.make(`${value}-v2`))
          values.set(`${wallet}/${name}`, i % 4 === 0 ? `${value}-v2` : value)
        }
        yield* vault.delete("codex", "team/secret-1") // a tombstone: no envelope
        values.delete("codex/team/secret-1")
        yield* provider.rotate()

        const first = yield* Rewrap.run({ pageSize: 8, maxPages: 2 }).pipe(
          Effect.provide(Rewrap.layerVaultTable)
        )
        assert.isFalse(first.done)
        const second = yield* Rewrap.run({ pageSize: 8 }).pipe(Effect.provide(Rewrap.layerVaultTable))
        assert.isTrue(second.done)
        // 24 secrets + 6 second versions, every one an envelope (the tombstone is not).
        assert.strictEqual(first.moved + second.moved, 30)
        // Every stored wrap is now under the wallet's current key...
        const current = new Map<string, string>()
        for (const wallet of ["codex", "claude"]) {
          current.set(wallet, (yield* provider.generateDataKey({ wallet, purpose: "vault" })).keyId)
        }
        const again = yield* Effect.flatMap(Rewrap.WrappedDeks, (d) => d.page(Option.none(), 1000)).pipe(
          Effect.provide(Rewrap.layerVaultTable)
        )
        assert.strictEqual(again.items.length, 30)
        for (const d of again.items) assert.strictEqual(d.keyId, current.get(d.context.wallet))
        // ...and the vault reads every secret back unchanged.
        for (const [address, value] of values) {
          const [wallet, ...rest] = address.split("/")
          const secret = yield* vault.get(wallet ?? "", rest.join("/"))
          assert.strictEqual(Redacted.value(secret.value), value)
        }
      }).pipe(
        Effect.provide(SecretStore.layerDynamoDb),
        Effect.provide(coordination(memoryKeys)),
        Effect.provideService(DynamoDb.DynamoDb, shape)
      )
    }).pipe(Effect.provide(DynamoDb.layerEmbedded()))
  )
})
