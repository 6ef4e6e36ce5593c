import { assert, describe, it } from "@effect/vitest"
import { Context, Duration, Effect, Exit, Layer, Redacted, TestClock } from "effect"
import { DekCache, Envelope, KeyProvider } from "../src/index.js"
import type { KeyProviderShape } from "../src/KeyProvider.js"
import { toHex } from "./helpers.js"

const ctx = { wallet: "codex", purpose: "vault" }

class Unwraps extends Context.Tag("test/Unwraps")<Unwraps, { count: number }>() {}

/** The memory keyring with a counter of the unwraps that reach it. */
const counting = Layer.effectContext(
  Effect.gen(function* () {
    const inner = yield* KeyProvider.KeyProvider
    const counter = { count: 0 }
    const shape: KeyProviderShape = {
      ...inner,
      decryptDataKey: (c, w, k) =>
        Effect.zipRight(
          Effect.sync(() => counter.count++),
          inner.decryptDataKey(c, w, k)
        )
    }
    return Context.make(KeyProvider.KeyProvider, shape).pipe(Context.add(Unwraps, counter))
  })
).pipe(Layer.provide(KeyProvider.layerMemory))

const withCache = (options: DekCache.Options) =>
  Layer.effectContext(
    Effect.gen(function* () {
      const { control, provider } = DekCache.make(yield* KeyProvider.KeyProvider, options)
      return Context.make(KeyProvider.KeyProvider, provider).pipe(
        Context.add(DekCache.DekCache, control),
        Context.add(Unwraps, yield* Unwraps)
      )
    })
  ).pipe(Layer.provide(counting))

const unwraps = Effect.map(Unwraps, (u) => u.count)

describe("DekCache", () => {
  it.effect("serves repeated reads from the cache and seeds it from generateDataKey", () =>
    Effect.gen(function* () {
      const kp = yield* KeyProvider.KeyProvider
      const dk = yield* kp.generateDataKey(ctx)
      for (let i = 0; i < 5; i++) {
        const dek = yield* kp.decryptDataKey(ctx, dk.wrapped, dk.keyId)
        assert.strictEqual(toHex(Redacted.value(dek)), toHex(Redacted.value(dk.plaintext)))
      }
      assert.strictEqual(yield* unwraps, 0)
      const stats = yield* Effect.flatMap(DekCache.DekCache, (c) => c.stats)
      assert.strictEqual(stats.hits, 5)
      assert.strictEqual(stats.entries, 1)
    }).pipe(Effect.provide(withCache({})))
  )

  it.effect("returns copies: wiping a returned key does not poison the cache", () =>
    Effect.gen(function* () {
      const kp = yield* KeyProvider.KeyProvider
      const dk = yield* kp.generateDataKey(ctx)
      const expected = toHex(Redacted.value(dk.plaintext))
      Redacted.value(dk.plaintext).fill(0)
      const a = yield* kp.decryptDataKey(ctx, dk.wrapped, dk.keyId)
      Redacted.value(a).fill(0)
      const b = yield* kp.decryptDataKey(ctx, dk.wrapped, dk.keyId)
      assert.strictEqual(toHex(Redacted.value(b)), expected)
    }).pipe(Effect.provide(withCache({})))
  )

  it.effect("a cached key is only served for the exact context and key id it was unwrapped with", () =>
    Effect.gen(function* () {
      const kp = yield* KeyProvider.KeyProvider
      const dk = yield* kp.generateDataKey(ctx)
      const exit = yield* Effect.exit(kp.decryptDataKey({ ...ctx, wallet: "claude" }, dk.wrapped, dk.keyId))
      assert.isTrue(Exit.isFailure(exit))
      const exit2 = yield* Effect.exit(kp.decryptDataKey({ ...ctx, purpose: "other" }, dk.wrapped, dk.keyId))
      assert.isTrue(Exit.isFailure(exit2))
      const exit3 = yield* Effect.exit(kp.decryptDataKey(ctx, dk.wrapped, "local:codex:kek-v2"))
      assert.isTrue(Exit.isFailure(exit3))
      // The misdirected reads reached the keyring and left the entry in place.
      assert.strictEqual(yield* unwraps, 3)
      yield* kp.decryptDataKey(ctx, dk.wrapped, dk.keyId)
      assert.strictEqual(yield* unwraps, 3)
    }).pipe(Effect.provide(withCache({})))
  )

  it.effect("a wrapped key altered anywhere (same tag bytes) is never served from the cache", () =>
    Effect.gen(function* () {
      const kp = yield* KeyProvider.KeyProvider
      const dk = yield* kp.generateDataKey(ctx)
      for (const i of [0, 1, 5, 10, 30, dk.wrapped.length - 17]) {
        const tampered = new Uint8Array(dk.wrapped)
        tampered[i] = tampered[i]! ^ 0x80
        const exit = yield* Effect.exit(kp.decryptDataKey(ctx, tampered, dk.keyId))
        assert.isTrue(Exit.isFailure(exit), `byte ${i}`)
      }
      assert.strictEqual(yield* unwraps, 6)
      // ...and does not evict the entry made from the real one.
      yield* kp.decryptDataKey(ctx, dk.wrapped, dk.keyId)
      assert.strictEqual(yield* unwraps, 6)
    }).pipe(Effect.provide(withCache({})))
  )

  it.effect("bounded by age (TestClock): an entry older than maxAge is unwrapped again", () =>
    Effect.gen(function* () {
      const kp = yield* KeyProvider.KeyProvider
      const dk = yield* kp.generateDataKey(ctx)
      yield* TestClock.adjust(Duration.seconds(59))
      yield* kp.decryptDataKey(ctx, dk.wrapped, dk.keyId)
      assert.strictEqual(yield* unwraps, 0)
      yield* TestClock.adjust(Duration.seconds(2))
      yield* kp.decryptDataKey(ctx, dk.wrapped, dk.keyId)
      assert.strictEqual(yield* unwraps, 1)
      yield* kp.decryptDataKey(ctx, dk.wrapped, dk.keyId)
      assert.strictEqual(yield* unwraps, 1)
    }).pipe(Effect.provide(withCache({ maxAge: Duration.minutes(1) })))
  )

  it.effect("bounded by uses: after maxUses hits the next read unwraps again", () =>
    Effect.gen(function* () {
      const kp = yield* KeyProvider.KeyProvider
      const dk = yield* kp.generateDataKey(ctx)
      for (let i = 0; i < 3; i++) yield* kp.decryptDataKey(ctx, dk.wrapped, dk.keyId)
      assert.strictEqual(yield* unwraps, 0)
      yield* kp.decryptDataKey(ctx, dk.wrapped, dk.keyId)
      assert.strictEqual(yield* unwraps, 1)
    }).pipe(Effect.provide(withCache({ maxUses: 3 })))
  )

  it.effect("bounded by entries: least recently used entries are evicted first", () =>
    Effect.gen(function* () {
      const kp = yield* KeyProvider.KeyProvider
      const keys = []
      for (let i = 0; i < 4; i++) keys.push(yield* kp.generateDataKey(ctx))
      const stats = yield* Effect.flatMap(DekCache.DekCache, (c) => c.stats)
      assert.strictEqual(stats.entries, 2)
      assert.strictEqual(stats.evictions, 2)
      const [k0, , k2, k3] = keys
      yield* kp.decryptDataKey(ctx, k3!.wrapped, k3!.keyId)
      yield* kp.decryptDataKey(ctx, k2!.wrapped, k2!.keyId)
      assert.strictEqual(yield* unwraps, 0)
      yield* kp.decryptDataKey(ctx, k0!.wrapped, k0!.keyId) // evicted: unwrap, evicts k3 (LRU)
      assert.strictEqual(yield* unwraps, 1)
      yield* kp.decryptDataKey(ctx, k2!.wrapped, k2!.keyId)
      assert.strictEqual(yield* unwraps, 1)
      yield* kp.decryptDataKey(ctx, k3!.wrapped, k3!.keyId)
      assert.strictEqual(yield* unwraps, 2)
    }).pipe(Effect.provide(withCache({ maxEntries: 2 })))
  )

  it.effect("invalidateWallet and clear drop entries (after crypto-shredding)", () =>
    Effect.gen(function* () {
      const kp = yield* KeyProvider.KeyProvider
      const cache = yield* DekCache.DekCache
      const a = yield* kp.generateDataKey(ctx)
      const b = yield* kp.generateDataKey({ wallet: "claude", purpose: "vault" })
      yield* cache.invalidateWallet("codex")
      assert.strictEqual((yield* cache.stats).entries, 1)
      yield* kp.decryptDataKey(ctx, a.wrapped, a.keyId)
      assert.strictEqual(yield* unwraps, 1)
      yield* cache.clear
      assert.strictEqual((yield* cache.stats).entries, 0)
      yield* kp.decryptDataKey({ wallet: "claude", purpose: "vault" }, b.wrapped, b.keyId)
      assert.strictEqual(yield* unwraps, 2)
    }).pipe(Effect.provide(withCache({})))
  )

  it.effect("the layer wraps the KeyProvider in scope; Envelope works through it", () =>
    Effect.gen(function* () {
      const address = { wallet: "codex", name: "n", version: 1 }
      const env = yield* Envelope.seal(address, Redacted.make("v"))
      assert.strictEqual(Redacted.value(yield* Envelope.openText(address, env)), "v")
      assert.strictEqual((yield* Effect.flatMap(DekCache.DekCache, (c) => c.stats)).hits, 1)
    }).pipe(Effect.provide(DekCache.layer().pipe(Layer.provide(KeyProvider.layerMemory))))
  )
})
