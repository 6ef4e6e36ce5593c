import { randomBytes } from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Either, Exit, FastCheck, Layer, Redacted } from "effect"
import { Envelope, KeyProvider } from "../src/index.js"
import { tempDir, toHex } from "./helpers.js"

const address: Envelope.Address = { wallet: "codex", name: "openrouter/api-key", version: 3 }
const CANARY = "CANARY-sk-or-v1-4f1c2d9e8b7a"

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined
const tagOf = <A, E extends { readonly _tag: string }>(exit: Exit.Exit<A, E>) => failureOf(exit)?._tag

const SIZES = [0, 1, 15, 16, 17, 1023, 1024, 4096, 65535, 65536]

describe("Envelope", () => {
  it.layer(KeyProvider.layerMemory)((it) => {
    it.effect("round-trips secrets of every size from 0 to 64 KiB, as bytes and as text", () =>
      Effect.gen(function* () {
        const sampled = FastCheck.sample(FastCheck.integer({ min: 0, max: 65536 }), { numRuns: 60, seed: 42 })
        for (const [i, size] of [...SIZES, ...sampled].entries()) {
          const plain = new Uint8Array(randomBytes(size))
          const at = { ...address, version: i + 1 }
          const env = yield* Envelope.seal(at, Redacted.make(plain))
          assert.strictEqual(env.ciphertext.length, size + 16)
          assert.strictEqual(env.nonce.length, 12)
          const back = yield* Envelope.open(at, env)
          assert.strictEqual(toHex(Redacted.value(back)), toHex(plain), `size ${size}`)
          const decoded = Envelope.decode(Envelope.encode(env))
          assert.deepStrictEqual(decoded, Either.right(env))
        }
        const text = "clé — ключ — 鍵 — 🔑"
        const env = yield* Envelope.seal(address, Redacted.make(text))
        assert.strictEqual(Redacted.value(yield* Envelope.openText(address, env)), text)
      })
    )

    it.effect("sealed fields and the opened plaintext live in memory of their own (never a pool slice)", () =>
      Effect.gen(function* () {
        const ownMemory = (bytes: Uint8Array) =>
          bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.length
        for (const size of [0, 16, 1024, 5000]) {
          const env = yield* Envelope.seal(address, Redacted.make(new Uint8Array(randomBytes(size))))
          assert.isTrue(ownMemory(env.ciphertext), `ciphertext, size ${size}`)
          assert.isTrue(ownMemory(env.nonce), `nonce, size ${size}`)
          assert.isTrue(ownMemory(env.wrappedDek), `wrapped DEK, size ${size}`)
          assert.isTrue(
            ownMemory(Redacted.value(yield* Envelope.open(address, env))),
            `plaintext, size ${size}`
          )
        }
      })
    )

    it.effect("uses a fresh nonce and a fresh DEK for every seal", () =>
      Effect.gen(function* () {
        const a = yield* Envelope.seal(address, Redacted.make(CANARY))
        const b = yield* Envelope.seal(address, Redacted.make(CANARY))
        assert.notStrictEqual(toHex(a.nonce), toHex(b.nonce))
        assert.notStrictEqual(toHex(a.wrappedDek), toHex(b.wrappedDek))
        assert.notStrictEqual(toHex(a.ciphertext), toHex(b.ciphertext))
        assert.notInclude(Buffer.from(a.ciphertext).toString("latin1"), CANARY)
      })
    )

    it.effect(
      "flipping any single byte of ciphertext, tag, nonce, wrapped DEK, key id or AAD fails with DecryptFailed (2,400 trials)",
      () =>
        Effect.gen(function* () {
          const env = yield* Envelope.seal(address, Redacted.make(CANARY))
          const fields = ["ciphertext", "tag", "nonce", "wrappedDek", "keyId", "aad"] as const
          const trial = FastCheck.tuple(
            FastCheck.constantFrom(...fields),
            FastCheck.nat(),
            FastCheck.integer({ min: 1, max: 255 })
          )
          const counts: Record<string, number> = {}
          for (const [field, pos, mask] of FastCheck.sample(trial, { numRuns: 2400, seed: 7 })) {
            counts[field] = (counts[field] ?? 0) + 1
            const flip = (bytes: Uint8Array, from = 0, to = bytes.length) => {
              const out = new Uint8Array(bytes)
              const i = from + (pos % (to - from))
              out[i] = out[i]! ^ mask
              return out
            }
            let target = address
            let tampered: Envelope.Envelope = env
            switch (field) {
              case "ciphertext":
                tampered = { ...env, ciphertext: flip(env.ciphertext, 0, env.ciphertext.length - 16) }
                break
              case "tag":
                tampered = { ...env, ciphertext: flip(env.ciphertext, env.ciphertext.length - 16) }
                break
              case "nonce":
                tampered = { ...env, nonce: flip(env.nonce) }
                break
              case "wrappedDek":
                tampered = { ...env, wrappedDek: flip(env.wrappedDek) }
                break
              case "keyId":
                tampered = {
                  ...env,
                  keyId: Buffer.from(flip(Buffer.from(env.keyId, "utf8"))).toString("latin1")
                }
                break
              case "aad": {
                // Flip one byte of the canonical address, staying a valid address (a byte of the
                // name, a digit of the version, or a character of the wallet).
                const part = pos % 3
                if (part === 0) {
                  const name = Buffer.from(address.name, "utf8")
                  const i = pos % name.length
                  name[i] = 0x21 + ((name[i]! - 0x21 + (mask % 93) + 1) % 94) // another printable ASCII
                  target = { ...address, name: name.toString("utf8") }
                } else if (part === 1) {
                  target = { ...address, version: address.version + 1 + (mask % 9) }
                } else {
                  const wallet = Buffer.from(address.wallet, "ascii")
                  const i = pos % wallet.length
                  wallet[i] = 0x61 + ((wallet[i]! - 0x61 + (mask % 25) + 1) % 26) // another lowercase letter
                  target = { ...address, wallet: wallet.toString("ascii") }
                }
                assert.notStrictEqual(Envelope.canonicalAddress(target), Envelope.canonicalAddress(address))
                break
              }
            }
            const exit = yield* Effect.exit(Envelope.open(target, tampered))
            assert.strictEqual(tagOf(exit), "DecryptFailed", `${field} pos ${pos} mask ${mask}`)
            const error = failureOf(exit)!
            assert.notInclude(`${error.message} ${JSON.stringify(error)} ${String(error)}`, CANARY)
            assert.notInclude(Cause.pretty(Exit.isFailure(exit) ? exit.cause : Cause.empty), CANARY)
          }
          for (const field of fields) assert.isAtLeast(counts[field] ?? 0, 300, field)
          // The untouched envelope still opens.
          assert.strictEqual(Redacted.value(yield* Envelope.openText(address, env)), CANARY)
        }),
      // 2,400 opens with a rendered cause each: seconds when idle, far more on a loaded CI machine
      120_000
    )

    it.effect(
      "a ciphertext copied to another address, or an envelope with shortened fields, does not open",
      () =>
        Effect.gen(function* () {
          const env = yield* Envelope.seal(address, Redacted.make(CANARY))
          for (const other of [
            { ...address, wallet: "claude" },
            { ...address, name: "openrouter/api-key2" },
            { ...address, version: 4 }
          ]) {
            assert.strictEqual(tagOf(yield* Effect.exit(Envelope.open(other, env))), "DecryptFailed")
          }
          const short = [
            { ...env, nonce: env.nonce.subarray(0, 11) },
            { ...env, ciphertext: env.ciphertext.subarray(0, 15) },
            { ...env, ciphertext: env.ciphertext.subarray(0, env.ciphertext.length - 1) },
            { ...env, wrappedDek: env.wrappedDek.subarray(0, env.wrappedDek.length - 1) },
            { ...env, keyId: "" }
          ]
          for (const e of short)
            assert.strictEqual(tagOf(yield* Effect.exit(Envelope.open(address, e))), "DecryptFailed")
        })
    )

    it.effect(
      "rejects invalid addresses with InvalidKeyContext naming the field, without echoing values",
      () =>
        Effect.gen(function* () {
          const cases: ReadonlyArray<[Envelope.Address, string]> = [
            [{ ...address, wallet: "co:dex" }, "address.wallet"],
            [{ ...address, wallet: "" }, "address.wallet"],
            [{ ...address, name: "" }, "address.name"],
            [{ ...address, name: `a\nb${CANARY}` }, "address.name"],
            [{ ...address, name: "x".repeat(513) }, "address.name"],
            [{ ...address, version: 0 }, "address.version"],
            [{ ...address, version: 1.5 }, "address.version"]
          ]
          for (const [bad, field] of cases) {
            const exit = yield* Effect.exit(Envelope.seal(bad, Redacted.make(CANARY)))
            const error = failureOf(exit)
            assert.strictEqual(error?._tag, "InvalidKeyContext")
            if (error?._tag === "InvalidKeyContext") {
              assert.strictEqual(error.field, field)
              assert.notInclude(error.message, CANARY)
            }
          }
        })
    )

    it.effect("rewrap after rotation keeps the ciphertext and still opens", () =>
      Effect.gen(function* () {
        const kp = yield* KeyProvider.KeyProvider
        const env = yield* Envelope.seal(address, Redacted.make(CANARY))
        yield* kp.rotate()
        const { envelope, rewrapped } = yield* Envelope.rewrap(address, env)
        assert.isTrue(rewrapped)
        assert.strictEqual(toHex(envelope.ciphertext), toHex(env.ciphertext))
        assert.strictEqual(toHex(envelope.nonce), toHex(env.nonce))
        assert.notStrictEqual(envelope.keyId, env.keyId)
        assert.strictEqual(Redacted.value(yield* Envelope.openText(address, envelope)), CANARY)
        assert.strictEqual(Redacted.value(yield* Envelope.openText(address, env)), CANARY)
      })
    )
  })

  describe("encodings", () => {
    const sample: Envelope.Envelope = {
      ciphertext: new Uint8Array(randomBytes(40)),
      nonce: new Uint8Array(randomBytes(12)),
      wrappedDek: new Uint8Array(randomBytes(65)),
      keyId: "local:codex:kek-v1"
    }

    it("binary: starts with AAPE, format 1, AES-256-GCM, and round-trips", () => {
      const bytes = Envelope.encode(sample)
      assert.strictEqual(Buffer.from(bytes.subarray(0, 4)).toString("ascii"), "AAPE")
      assert.strictEqual(bytes[4], 1)
      assert.strictEqual(bytes[5], 1)
      assert.deepStrictEqual(Envelope.decode(bytes), Either.right(sample))
    })

    it("binary: every truncation, trailing bytes, bad magic, format or algorithm is InvalidEnvelope", () => {
      const bytes = Envelope.encode(sample)
      for (let n = 0; n < bytes.length; n++) {
        const r = Envelope.decode(bytes.subarray(0, n))
        assert.isTrue(Either.isLeft(r) && r.left._tag === "InvalidEnvelope", `length ${n}`)
      }
      const withTrailing = new Uint8Array([...bytes, 0])
      const cases: ReadonlyArray<[Uint8Array, string]> = [
        [withTrailing, "trailing bytes"],
        [new Uint8Array([0x42, ...bytes.subarray(1)]), "bad magic"],
        [new Uint8Array([...bytes.subarray(0, 4), 2, ...bytes.subarray(5)]), "unsupported envelope format 2"],
        [new Uint8Array([...bytes.subarray(0, 5), 9, ...bytes.subarray(6)]), "unsupported algorithm 9"]
      ]
      for (const [input, reason] of cases) {
        const r = Envelope.decode(input)
        assert.isTrue(Either.isLeft(r))
        if (Either.isLeft(r)) assert.include(r.left.reason, reason)
      }
    })

    it("attributes: plain values and DynamoDB AttributeValues both read back", () => {
      assert.deepStrictEqual(Envelope.fromAttributes(Envelope.toAttributes(sample)), Either.right(sample))
      const item = { PK: { S: "wallet#codex" }, ...Envelope.toAttributeValues(sample) }
      assert.deepStrictEqual(Envelope.fromAttributes(item), Either.right(sample))
      assert.deepStrictEqual(Object.keys(Envelope.toAttributes(sample)).sort(), [
        "content_encrypted",
        "content_nonce",
        "key_id",
        "wrapped_dek"
      ])
    })

    it("attributes: a missing or mistyped attribute is InvalidEnvelope naming it", () => {
      const full = Envelope.toAttributes(sample)
      for (const name of ["content_encrypted", "content_nonce", "wrapped_dek", "key_id"] as const) {
        const { [name]: _removed, ...rest } = full
        const r = Envelope.fromAttributes(rest)
        assert.isTrue(Either.isLeft(r) && r.left.reason.startsWith(name))
      }
      const r = Envelope.fromAttributes({ ...full, key_id: 7 })
      assert.isTrue(Either.isLeft(r) && r.left.reason.startsWith("key_id"))
    })
  })

  it.effect("works the same over the local keyring file adapter (500 flip trials)", () =>
    Effect.gen(function* () {
      const env = yield* Envelope.seal(address, Redacted.make(CANARY))
      for (const [field, pos, mask] of FastCheck.sample(
        FastCheck.tuple(
          FastCheck.constantFrom(...(["ciphertext", "nonce", "wrappedDek", "keyId"] as const)),
          FastCheck.nat(),
          FastCheck.integer({ min: 1, max: 255 })
        ),
        { numRuns: 500, seed: 11 }
      )) {
        const flip = (b: Uint8Array) => {
          const o = new Uint8Array(b)
          o[pos % o.length] = o[pos % o.length]! ^ mask
          return o
        }
        const tampered =
          field === "keyId"
            ? { ...env, keyId: Buffer.from(flip(Buffer.from(env.keyId))).toString("latin1") }
            : { ...env, [field]: flip(env[field]) }
        assert.strictEqual(tagOf(yield* Effect.exit(Envelope.open(address, tampered))), "DecryptFailed")
      }
    }).pipe(
      Effect.provide(
        Layer.unwrapScoped(
          Effect.map(tempDir, (dir) => KeyProvider.layerLocalKeyring({ path: `${dir}/keys/keyring.json` }))
        )
      )
    )
  )
})
