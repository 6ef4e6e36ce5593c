/**
 * Known-answer tests. CI reads only the committed JSON; vectors/generate.py (Python
 * `cryptography`, an independent implementation) wrote it.
 */
import { readFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Redacted } from "effect"
import { Envelope, SystemKeys } from "../src/index.js"
import { gcmOpen, gcmSeal } from "../src/internal/aead.js"
import type { KeyringDoc } from "../src/internal/keyring.js"
import { hex, layerFromDoc, toHex } from "./helpers.js"

const load = (name: string) =>
  JSON.parse(readFileSync(new URL(`../vectors/${name}`, import.meta.url), "utf8"))

interface GcmCase {
  source: string
  name: string
  key: string
  iv: string
  pt: string
  aad: string
  ct: string
  tag: string
  fail?: boolean
}
const nist: { cases: ReadonlyArray<GcmCase> } = load("nist-aes-256-gcm.json")

describe("NIST AES-256-GCM known answers (node:crypto through our AEAD helpers)", () => {
  it("has CAVP gcmEncryptExtIV256 cases, passing and failing", () => {
    assert.isAtLeast(nist.cases.filter((c) => c.source.includes("CAVP") && c.fail !== true).length, 8)
    assert.isAtLeast(nist.cases.filter((c) => c.fail === true).length, 8)
  })
  for (const c of nist.cases) {
    it(`${c.source}: ${c.name}`, () => {
      const sealedExpected = c.ct + c.tag
      if (c.fail === true) {
        assert.isUndefined(gcmOpen(hex(c.key), hex(c.iv), hex(sealedExpected), hex(c.aad)))
        return
      }
      assert.strictEqual(toHex(gcmSeal(hex(c.key), hex(c.iv), hex(c.pt), hex(c.aad))), sealedExpected)
      const opened = gcmOpen(hex(c.key), hex(c.iv), hex(sealedExpected), hex(c.aad))
      assert.isDefined(opened)
      assert.strictEqual(toHex(opened!), c.pt)
    })
  }
})

interface EnvelopeCase {
  address: Envelope.Address
  aad: string
  plaintext: string
  dek: string
  envelope: { ciphertext: string; nonce: string; wrappedDek: string; keyId: string }
  attributes: { content_encrypted: string; content_nonce: string; wrapped_dek: string; key_id: string }
  binary: string
}
const vectors: {
  keyring: KeyringDoc
  systemRoot: string
  envelopes: ReadonlyArray<EnvelopeCase>
  systemKeys: {
    hmac: ReadonlyArray<{ purpose: string; key: string; message: string; hmac: string }>
    ed25519: ReadonlyArray<{
      purpose: string
      publicKey: string
      message: string
      signature: string
      keyId: string
    }>
  }
} = load("envelope-v1.json")

const envelopeOf = (c: EnvelopeCase): Envelope.Envelope => ({
  ciphertext: hex(c.envelope.ciphertext),
  nonce: hex(c.envelope.nonce),
  wrappedDek: hex(c.envelope.wrappedDek),
  keyId: c.envelope.keyId
})

describe("envelope v1 vectors from Python cryptography", () => {
  it.layer(layerFromDoc(vectors.keyring))((it) => {
    for (const c of vectors.envelopes) {
      const label = `${c.address.wallet}/${c.address.name}@${c.address.version} (${c.plaintext.length / 2} bytes)`
      it.effect(`opens ${label} through the Python-made keyring`, () =>
        Effect.gen(function* () {
          const opened = yield* Envelope.open(c.address, envelopeOf(c))
          assert.strictEqual(toHex(Redacted.value(opened)), c.plaintext)
        })
      )
      it(`canonical address, content encryption and binary encoding agree for ${label}`, () => {
        assert.strictEqual(Envelope.canonicalAddress(c.address), c.aad)
        const ours = gcmSeal(hex(c.dek), hex(c.envelope.nonce), hex(c.plaintext), Buffer.from(c.aad, "utf8"))
        assert.strictEqual(toHex(ours), c.envelope.ciphertext)
        assert.strictEqual(toHex(Envelope.encode(envelopeOf(c))), c.binary)
        const decoded = Envelope.decode(hex(c.binary))
        assert.isTrue(Either.isRight(decoded))
        if (Either.isRight(decoded)) assert.deepStrictEqual(decoded.right, envelopeOf(c))
        const attrs = Envelope.fromAttributes({
          content_encrypted: new Uint8Array(Buffer.from(c.attributes.content_encrypted, "base64")),
          content_nonce: new Uint8Array(Buffer.from(c.attributes.content_nonce, "base64")),
          wrapped_dek: new Uint8Array(Buffer.from(c.attributes.wrapped_dek, "base64")),
          key_id: c.attributes.key_id
        })
        assert.deepStrictEqual(attrs, Either.right(envelopeOf(c)))
      })
    }

    it.effect("derives the Python-computed system keys from the keyring's system root", () =>
      Effect.gen(function* () {
        const keys = yield* SystemKeys.SystemKeys
        for (const h of vectors.systemKeys.hmac) {
          assert.strictEqual(yield* keys.hmac(h.purpose, h.message), h.hmac)
          assert.strictEqual(toHex(Redacted.value(yield* keys.hmacKey(h.purpose))), h.key)
        }
        for (const s of vectors.systemKeys.ed25519) {
          const key = yield* keys.signingKey(s.purpose)
          assert.strictEqual(toHex(key.publicKeyRaw), s.publicKey)
          assert.strictEqual(key.keyId, s.keyId)
          assert.strictEqual(toHex(key.sign(s.message)), s.signature) // Ed25519 is deterministic
          assert.isTrue(SystemKeys.verifyEd25519(hex(s.publicKey), s.message, hex(s.signature)))
          assert.isFalse(SystemKeys.verifyEd25519(hex(s.publicKey), `${s.message}!`, hex(s.signature)))
        }
      })
    )
  })
})
