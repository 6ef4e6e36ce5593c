import { SystemKeys } from "@aap/key-custody"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import * as CoordinationStore from "../../src/CoordinationStore.js"
import * as ProvisionedKeys from "../../src/delivery/ProvisionedKeys.js"
import { dynamoStore, engine } from "../support/fixtures.js"

const key = (session: string, hash: string, expiresAt: number): ProvisionedKeys.ProvisionedKey => ({
  session,
  provider: "openrouter",
  hash,
  wallet: "codex",
  capability: "openrouter-metered",
  managementSecret: "openrouter/management",
  createdAt: expiresAt - 900,
  expiresAt
})

const conformance = (name: string, store: Layer.Layer<CoordinationStore.CoordinationStore, unknown>) =>
  describe(`ProvisionedKeys over the ${name} coordination store`, () => {
    const layer = ProvisionedKeys.layer.pipe(Layer.provideMerge(Layer.merge(store, SystemKeys.layerMemory)))

    it.effect("records by session, idempotently; holds hashes only", () =>
      Effect.gen(function* () {
        const keys = yield* ProvisionedKeys.ProvisionedKeys
        yield* keys.record(key("ses_a", "h1", 2000))
        yield* keys.record(key("ses_a", "h1", 2000))
        yield* keys.record(key("ses_a", "h2", 2000))
        yield* keys.record(key("ses_b", "h3", 2000))
        const a = yield* keys.forSession("ses_a")
        assert.sameMembers(
          a.map((k) => k.hash),
          ["h1", "h2"]
        )
        assert.deepStrictEqual(yield* keys.forSession("ses_none"), [])
      }).pipe(Effect.provide(layer))
    )

    it.effect(
      "due: unrevoked keys whose deadline passed, oldest first; markRevoked removes them, idempotently",
      () =>
        Effect.gen(function* () {
          const keys = yield* ProvisionedKeys.ProvisionedKeys
          yield* keys.record(key("ses_late", "h9", 3000))
          yield* keys.record(key("ses_early", "h8", 1000))
          yield* keys.record(key("ses_mid", "h7", 2000))
          assert.deepStrictEqual(
            (yield* keys.due(2000, 10)).map((k) => k.hash),
            ["h8", "h7"]
          )
          assert.deepStrictEqual(
            (yield* keys.due(5000, 1)).map((k) => k.hash),
            ["h8"]
          )
          const [early] = yield* keys.forSession("ses_early")
          yield* keys.markRevoked(early!, 1500)
          yield* keys.markRevoked(early!, 1600)
          assert.deepStrictEqual(
            (yield* keys.due(5000, 10)).map((k) => k.hash),
            ["h7", "h9"]
          )
          const [after] = yield* keys.forSession("ses_early")
          assert.strictEqual(after?.revokedAt, 1500)
        }).pipe(Effect.provide(layer))
    )

    it.effect("pages through more keys than one query returns", () =>
      Effect.gen(function* () {
        const keys = yield* ProvisionedKeys.ProvisionedKeys
        for (let i = 0; i < 130; i++)
          yield* keys.record(key("ses_many", `h${String(i).padStart(3, "0")}`, 1000))
        assert.strictEqual((yield* keys.forSession("ses_many")).length, 130)
        assert.strictEqual((yield* keys.due(1000, 500)).length, 130)
      }).pipe(Effect.provide(layer))
    )

    it.effect("an item edited in the table is Tampered, not trusted", () =>
      Effect.gen(function* () {
        const keys = yield* ProvisionedKeys.ProvisionedKeys
        const store = yield* CoordinationStore.CoordinationStore
        yield* keys.record(key("ses_t", "h1", 1000))
        const item = Option.getOrThrow(yield* store.get("provisioned#ses_t", "key#h1"))
        yield* store.put(
          { ...item, data: { ...item.data, wallet: "claude" }, version: item.version + 1 },
          CoordinationStore.atVersion(item.version)
        )
        const e = yield* Effect.flip(keys.forSession("ses_t"))
        assert.strictEqual(e._tag, "Tampered")
      }).pipe(Effect.provide(layer))
    )
  })

conformance("memory", CoordinationStore.layerMemory)
conformance("dynalite", dynamoStore.pipe(Layer.provide(engine)))
