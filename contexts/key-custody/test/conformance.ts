/**
 * The KeyProvider conformance suite: every adapter runs it (memory, local keyring file,
 * AWS KMS against a simulated KMS, and live KMS when AAP_LIVE_KMS_KEY_ID is set).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, type Layer, Redacted } from "effect"
import { KeyProvider } from "../src/KeyProvider.js"
import { toHex } from "./helpers.js"

const ctx = { wallet: "codex", purpose: "vault" }

const failureTag = <A, E extends { readonly _tag: string }>(exit: Exit.Exit<A, E>): string =>
  Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error._tag : `not a failure: ${exit._tag}`

export const conformance = <E>(
  name: string,
  layer: Layer.Layer<KeyProvider, E>,
  options: { readonly rotates?: boolean } = {}
) =>
  describe(`KeyProvider conformance: ${name}`, () => {
    it.layer(layer, { timeout: 60_000 })((it) => {
      it.effect("generates a fresh 256-bit DEK that decrypts back under the same context", () =>
        Effect.gen(function* () {
          const kp = yield* KeyProvider
          const a = yield* kp.generateDataKey(ctx)
          const b = yield* kp.generateDataKey(ctx)
          assert.strictEqual(Redacted.value(a.plaintext).length, 32)
          assert.notStrictEqual(toHex(Redacted.value(a.plaintext)), toHex(Redacted.value(b.plaintext)))
          assert.isTrue(a.keyId.length > 0)
          const back = yield* kp.decryptDataKey(ctx, a.wrapped, a.keyId)
          assert.strictEqual(toHex(Redacted.value(back)), toHex(Redacted.value(a.plaintext)))
        })
      )

      it.effect("the plaintext DEK does not appear in the wrapped form", () =>
        Effect.gen(function* () {
          const kp = yield* KeyProvider
          const a = yield* kp.generateDataKey(ctx)
          assert.notInclude(toHex(a.wrapped), toHex(Redacted.value(a.plaintext)))
        })
      )

      it.effect("binds the context: another wallet or purpose fails with DecryptFailed", () =>
        Effect.gen(function* () {
          const kp = yield* KeyProvider
          const a = yield* kp.generateDataKey(ctx)
          const otherWallet = yield* Effect.exit(
            kp.decryptDataKey({ ...ctx, wallet: "claude" }, a.wrapped, a.keyId)
          )
          const otherPurpose = yield* Effect.exit(
            kp.decryptDataKey({ ...ctx, purpose: "audit" }, a.wrapped, a.keyId)
          )
          assert.strictEqual(failureTag(otherWallet), "DecryptFailed")
          assert.strictEqual(failureTag(otherPurpose), "DecryptFailed")
        })
      )

      it.effect("a tampered wrapped key or a key id that does not match it fails with DecryptFailed", () =>
        Effect.gen(function* () {
          const kp = yield* KeyProvider
          const a = yield* kp.generateDataKey(ctx)
          const other = yield* kp.generateDataKey({ wallet: "claude", purpose: "vault" })
          for (let i = 0; i < a.wrapped.length; i += Math.max(1, Math.floor(a.wrapped.length / 8))) {
            const tampered = new Uint8Array(a.wrapped)
            tampered[i] = tampered[i]! ^ 0x01
            const exit = yield* Effect.exit(kp.decryptDataKey(ctx, tampered, a.keyId))
            assert.strictEqual(failureTag(exit), "DecryptFailed", `byte ${i}`)
          }
          const truncated = yield* Effect.exit(kp.decryptDataKey(ctx, a.wrapped.subarray(0, 10), a.keyId))
          assert.strictEqual(failureTag(truncated), "DecryptFailed")
          if (other.keyId !== a.keyId) {
            const swapped = yield* Effect.exit(kp.decryptDataKey(ctx, a.wrapped, other.keyId))
            assert.strictEqual(failureTag(swapped), "DecryptFailed")
          }
        })
      )

      it.effect("rejects an invalid context with InvalidKeyContext, naming the field", () =>
        Effect.gen(function* () {
          const kp = yield* KeyProvider
          const exit = yield* Effect.exit(kp.generateDataKey({ wallet: "a:b", purpose: "vault" }))
          assert.strictEqual(failureTag(exit), "InvalidKeyContext")
          const exit2 = yield* Effect.exit(kp.generateDataKey({ wallet: "codex", purpose: "" }))
          assert.strictEqual(failureTag(exit2), "InvalidKeyContext")
        })
      )

      it.effect("describes itself without key material", () =>
        Effect.gen(function* () {
          const kp = yield* KeyProvider
          const a = yield* kp.generateDataKey(ctx)
          const d = yield* kp.describe()
          assert.isTrue(d.primaryKeyId.length > 0)
          assert.isTrue(d.masterKeys.some((m) => m.primary && m.keyId === d.primaryKeyId))
          const text = JSON.stringify(d)
          assert.notInclude(text, Buffer.from(Redacted.value(a.plaintext)).toString("base64"))
          assert.notInclude(text, toHex(Redacted.value(a.plaintext)))
        })
      )

      if (options.rotates !== false) {
        it.effect(
          "after rotation old DEKs still decrypt; rewrap moves them to the primary, content untouched",
          () =>
            Effect.gen(function* () {
              const kp = yield* KeyProvider
              const before = yield* kp.describe()
              const old = yield* kp.generateDataKey(ctx)
              const after = yield* kp.rotate()
              assert.notStrictEqual(after.primaryKeyId, before.primaryKeyId)
              const stillOpens = yield* kp.decryptDataKey(ctx, old.wrapped, old.keyId)
              assert.strictEqual(toHex(Redacted.value(stillOpens)), toHex(Redacted.value(old.plaintext)))
              const moved = yield* kp.rewrap(ctx, old.wrapped, old.keyId)
              assert.isTrue(moved.rewrapped)
              const fresh = yield* kp.generateDataKey(ctx)
              assert.strictEqual(moved.keyId, fresh.keyId)
              const same = yield* kp.decryptDataKey(ctx, moved.wrapped, moved.keyId)
              assert.strictEqual(toHex(Redacted.value(same)), toHex(Redacted.value(old.plaintext)))
              const again = yield* kp.rewrap(ctx, moved.wrapped, moved.keyId)
              assert.isFalse(again.rewrapped)
              assert.strictEqual(toHex(again.wrapped), toHex(moved.wrapped))
            })
        )
      }
    })
  })
