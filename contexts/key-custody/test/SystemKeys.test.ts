import { randomBytes } from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Redacted } from "effect"
import { KeyProvider, SystemKeys } from "../src/index.js"
import { toHex } from "./helpers.js"

const root = Redacted.make(new Uint8Array(randomBytes(32)))

describe("SystemKeys", () => {
  it.effect("HMAC keys are per purpose, stable for one root, and different across roots", () =>
    Effect.gen(function* () {
      const a = SystemKeys.make(root)
      const b = SystemKeys.make(root)
      const other = SystemKeys.make(Redacted.make(new Uint8Array(randomBytes(32))))
      const macA = yield* a.hmac(SystemKeys.Purpose.AuditHmac, "token")
      assert.match(macA, /^[0-9a-f]{64}$/)
      assert.strictEqual(yield* b.hmac(SystemKeys.Purpose.AuditHmac, "token"), macA)
      assert.strictEqual(
        yield* a.hmac(SystemKeys.Purpose.AuditHmac, new Uint8Array(Buffer.from("token"))),
        macA
      )
      assert.notStrictEqual(yield* a.hmac(SystemKeys.Purpose.IntegrityMac, "token"), macA)
      assert.notStrictEqual(yield* other.hmac(SystemKeys.Purpose.AuditHmac, "token"), macA)
      const key = yield* a.hmacKey(SystemKeys.Purpose.AuditHmac)
      assert.strictEqual(Redacted.value(key).length, 32)
      assert.notInclude(String(key), toHex(Redacted.value(key)))
    })
  )

  it.effect("signing keys: Ed25519 per purpose, verifiable with the raw public key alone", () =>
    Effect.gen(function* () {
      const keys = SystemKeys.make(root)
      const signing = yield* keys.signingKey(SystemKeys.Purpose.AuditCheckpoint)
      assert.strictEqual(signing.publicKey.asymmetricKeyType, "ed25519")
      assert.strictEqual(signing.publicKeyRaw.length, 32)
      assert.match(signing.keyId, /^ed25519:[0-9a-f]{16}$/)
      const statement = "stream=s1 seq=7 hash=00"
      const signature = signing.sign(statement)
      assert.strictEqual(signature.length, 64)
      assert.isTrue(signing.verify(statement, signature))
      assert.isTrue(SystemKeys.verifyEd25519(signing.publicKeyRaw, statement, signature))
      assert.isFalse(SystemKeys.verifyEd25519(signing.publicKeyRaw, "stream=s1 seq=8 hash=00", signature))
      const tampered = new Uint8Array(signature)
      tampered[0] = tampered[0]! ^ 1
      assert.isFalse(signing.verify(statement, tampered))
      assert.isFalse(SystemKeys.verifyEd25519(new Uint8Array(5), statement, signature))
      const again = yield* keys.signingKey(SystemKeys.Purpose.AuditCheckpoint)
      assert.strictEqual(again, signing)
      const other = yield* keys.signingKey("other-purpose")
      assert.notStrictEqual(toHex(other.publicKeyRaw), toHex(signing.publicKeyRaw))
      // The HMAC and Ed25519 derivations of one purpose string are unrelated.
      const mac = yield* keys.hmacKey(SystemKeys.Purpose.AuditCheckpoint)
      assert.notInclude(toHex(signing.publicKeyRaw), toHex(Redacted.value(mac)).slice(0, 16))
    })
  )

  it.effect("an invalid purpose is a defect (purposes are constants in code)", () =>
    Effect.gen(function* () {
      const keys = SystemKeys.make(root)
      for (const bad of ["", "Audit", "a b", "x".repeat(65)]) {
        const exit = yield* Effect.exit(keys.hmac(bad, "x"))
        assert.isTrue(Exit.isFailure(exit) && exit.cause._tag === "Die", bad)
      }
    })
  )

  it.effect("layerMemory: a fresh root per build; the memory keyring provides SystemKeys too", () =>
    Effect.gen(function* () {
      const mac = Effect.flatMap(SystemKeys.SystemKeys, (k) => k.hmac("audit-hmac", "x"))
      const one = yield* Effect.provide(mac, SystemKeys.layerMemory)
      const two = yield* Effect.provide(mac, SystemKeys.layerMemory)
      assert.notStrictEqual(one, two)
      const three = yield* Effect.provide(mac, KeyProvider.layerMemory)
      const four = yield* Effect.provide(mac, KeyProvider.layerMemory)
      assert.match(three, /^[0-9a-f]{64}$/)
      assert.notStrictEqual(three, four) // each memory keyring is new
      const fixed = yield* Effect.provide(mac, SystemKeys.layerFromRoot(root))
      assert.strictEqual(fixed, yield* SystemKeys.make(root).hmac("audit-hmac", "x"))
    })
  )
})
