/**
 * Envelope encryption of vault secrets (envelope format v1, ADR 0011).
 *
 * - Content: AES-256-GCM under a fresh DEK per secret version, a fresh random 96-bit nonce,
 *   AAD = the canonical address `aap:v1:vault:<wallet>:<name>:<version>` (UTF-8). A ciphertext
 *   copied to another wallet, name or version fails to open.
 * - `ciphertext` is the GCM output followed by its 16-byte tag.
 * - The DEK comes from `KeyProvider.generateDataKey({ wallet, purpose: "vault" })` and is
 *   stored wrapped (`wrappedDek`) with the id of the key that wrapped it (`keyId`).
 * - Plaintext is `Redacted` in and out; DEK bytes are wiped after use.
 * - Every tampered field (ciphertext, tag, nonce, wrapped DEK, key id, address) fails with
 *   `DecryptFailed`, which does not say which.
 *
 * Two encodings of the same record: DynamoDB attributes (`content_encrypted`, `content_nonce`,
 * `wrapped_dek`, `key_id`) and a versioned binary encoding for files and export:
 *
 * ```
 * "AAPE" | 0x01 format | 0x01 alg (AES-256-GCM) | nonce length (u8) | nonce
 *        | key id length (u16 BE) | key id (UTF-8) | wrapped DEK length (u16 BE) | wrapped DEK
 *        | ciphertext length (u32 BE) | ciphertext || tag
 * ```
 *
 * @since 0.1.0
 */
import { Effect, Either, Redacted } from "effect"
import { fillRandom, gcmOpen, gcmSeal, NONCE_BYTES, TAG_BYTES } from "./internal/aead.js"
import { addressProblem } from "./internal/validate.js"
import { DecryptFailed, InvalidEnvelope, type KeyProviderError } from "./KeyCustodyError.js"
import { KeyProvider, VAULT_PURPOSE } from "./KeyProvider.js"

/**
 * Where a secret version lives. `wallet` as in `EncryptionContext`; `name` 1-512 characters
 * without control characters (may contain `/` and `:`); `version` a positive integer.
 *
 * @since 0.1.0
 */
export interface Address {
  readonly wallet: string
  readonly name: string
  readonly version: number
}

/**
 * @since 0.1.0
 */
export interface Envelope {
  /** AES-256-GCM ciphertext followed by the 16-byte tag. */
  readonly ciphertext: Uint8Array
  /** 12 bytes. */
  readonly nonce: Uint8Array
  readonly wrappedDek: Uint8Array
  readonly keyId: string
}

/**
 * The DynamoDB attribute form (plain values; `Uint8Array` → `B`, string → `S`).
 *
 * @since 0.1.0
 */
export interface Attributes {
  readonly content_encrypted: Uint8Array
  readonly content_nonce: Uint8Array
  readonly wrapped_dek: Uint8Array
  readonly key_id: string
}

/**
 * The same attributes as DynamoDB `AttributeValue`s, ready for `PutItem`.
 *
 * @since 0.1.0
 */
export interface AttributeValues {
  readonly content_encrypted: { readonly B: Uint8Array }
  readonly content_nonce: { readonly B: Uint8Array }
  readonly wrapped_dek: { readonly B: Uint8Array }
  readonly key_id: { readonly S: string }
}

/**
 * The canonical address string used as AAD: `aap:v1:vault:<wallet>:<name>:<version>`.
 * Unambiguous because wallets contain no `:` and the version is the last, all-digit segment.
 *
 * @since 0.1.0
 */
export const canonicalAddress = (address: Address): string =>
  `aap:v1:vault:${address.wallet}:${address.name}:${address.version}`

/** The AAD bytes: the canonical address in UTF-8. */
const addressAad = (address: Address): Buffer => Buffer.from(canonicalAddress(address), "utf8")

const wipe = (key: Redacted.Redacted<Uint8Array>): void => {
  Redacted.value(key).fill(0)
  Redacted.unsafeWipe(key)
}

/**
 * Encrypt `plaintext` for `address` under a fresh DEK.
 *
 * @since 0.1.0
 */
export const seal = (
  address: Address,
  plaintext: Redacted.Redacted<string | Uint8Array>
): Effect.Effect<Envelope, KeyProviderError, KeyProvider> => {
  const problem = addressProblem(address)
  if (problem !== undefined) return Effect.fail(problem)
  return Effect.flatMap(KeyProvider, (provider) =>
    Effect.map(provider.generateDataKey({ wallet: address.wallet, purpose: VAULT_PURPOSE }), (dataKey) => {
      const value = Redacted.value(plaintext)
      const bytes = typeof value === "string" ? Buffer.from(value, "utf8") : value
      // Nonce and ciphertext are written straight into memory of their own: what is stored
      // never shares an ArrayBuffer with Node's allocation pool (a consumer reading `.buffer`
      // must not see other data), and nothing is copied twice.
      const nonce = new Uint8Array(NONCE_BYTES)
      fillRandom(nonce)
      const ciphertext = gcmSeal(Redacted.value(dataKey.plaintext), nonce, bytes, addressAad(address))
      if (typeof value === "string") bytes.fill(0)
      wipe(dataKey.plaintext)
      return { ciphertext, nonce, wrappedDek: dataKey.wrapped, keyId: dataKey.keyId }
    })
  )
}

/**
 * Decrypt an envelope stored at `address`.
 *
 * @since 0.1.0
 */
export const open = (
  address: Address,
  envelope: Envelope
): Effect.Effect<Redacted.Redacted<Uint8Array>, KeyProviderError, KeyProvider> => {
  const problem = addressProblem(address)
  if (problem !== undefined) return Effect.fail(problem)
  if (envelope.nonce.length !== NONCE_BYTES || envelope.ciphertext.length < TAG_BYTES) {
    return Effect.fail(new DecryptFailed())
  }
  return Effect.flatMap(KeyProvider, (provider) =>
    Effect.flatMap(
      provider.decryptDataKey(
        { wallet: address.wallet, purpose: VAULT_PURPOSE },
        envelope.wrappedDek,
        envelope.keyId
      ),
      (dek) => {
        const plain = gcmOpen(Redacted.value(dek), envelope.nonce, envelope.ciphertext, addressAad(address))
        wipe(dek)
        if (plain === undefined) return Effect.fail(new DecryptFailed())
        // `gcmOpen` returns memory of its own: hand it out as a plain Uint8Array, no copy.
        return Effect.succeed(Redacted.make(new Uint8Array(plain.buffer, plain.byteOffset, plain.length)))
      }
    )
  )
}

/**
 * `open`, decoding the plaintext as UTF-8.
 *
 * @since 0.1.0
 */
export const openText = (
  address: Address,
  envelope: Envelope
): Effect.Effect<Redacted.Redacted<string>, KeyProviderError, KeyProvider> =>
  Effect.map(open(address, envelope), (bytes) => {
    const text = Buffer.from(Redacted.value(bytes)).toString("utf8")
    wipe(bytes)
    return Redacted.make(text)
  })

/**
 * Move an envelope's DEK to the provider's current key (after rotation) without touching the
 * ciphertext. `rewrapped: false` when nothing changed.
 *
 * @since 0.1.0
 */
export const rewrap = (
  address: Address,
  envelope: Envelope
): Effect.Effect<
  { readonly envelope: Envelope; readonly rewrapped: boolean },
  KeyProviderError,
  KeyProvider
> => {
  const problem = addressProblem(address)
  if (problem !== undefined) return Effect.fail(problem)
  return Effect.flatMap(KeyProvider, (provider) =>
    Effect.map(
      provider.rewrap(
        { wallet: address.wallet, purpose: VAULT_PURPOSE },
        envelope.wrappedDek,
        envelope.keyId
      ),
      (r) => ({ envelope: { ...envelope, wrappedDek: r.wrapped, keyId: r.keyId }, rewrapped: r.rewrapped })
    )
  )
}

/**
 * @since 0.1.0
 * @category attributes
 */
export const toAttributes = (envelope: Envelope): Attributes => ({
  content_encrypted: envelope.ciphertext,
  content_nonce: envelope.nonce,
  wrapped_dek: envelope.wrappedDek,
  key_id: envelope.keyId
})

/**
 * @since 0.1.0
 * @category attributes
 */
export const toAttributeValues = (envelope: Envelope): AttributeValues => ({
  content_encrypted: { B: envelope.ciphertext },
  content_nonce: { B: envelope.nonce },
  wrapped_dek: { B: envelope.wrappedDek },
  key_id: { S: envelope.keyId }
})

type AttributeInput = { readonly [K in keyof Attributes]?: unknown }

const bytesField = (record: AttributeInput, name: keyof Attributes): Uint8Array | undefined => {
  const v = record[name]
  if (v instanceof Uint8Array) return v
  if (typeof v === "object" && v !== null && "B" in v && v.B instanceof Uint8Array) return v.B
  return undefined
}
const stringField = (record: AttributeInput, name: keyof Attributes): string | undefined => {
  const v = record[name]
  if (typeof v === "string") return v
  if (typeof v === "object" && v !== null && "S" in v && typeof v.S === "string") return v.S
  return undefined
}

/**
 * Read an envelope from an item holding the four attributes, either as plain values or as
 * DynamoDB `AttributeValue`s (`{ B }`, `{ S }`). Other attributes are ignored.
 *
 * @since 0.1.0
 * @category attributes
 */
export const fromAttributes = (record: AttributeInput): Either.Either<Envelope, InvalidEnvelope> => {
  const ciphertext = bytesField(record, "content_encrypted")
  const nonce = bytesField(record, "content_nonce")
  const wrappedDek = bytesField(record, "wrapped_dek")
  const keyId = stringField(record, "key_id")
  if (ciphertext === undefined)
    return Either.left(new InvalidEnvelope({ reason: "content_encrypted missing or not binary" }))
  if (nonce === undefined)
    return Either.left(new InvalidEnvelope({ reason: "content_nonce missing or not binary" }))
  if (wrappedDek === undefined)
    return Either.left(new InvalidEnvelope({ reason: "wrapped_dek missing or not binary" }))
  if (keyId === undefined)
    return Either.left(new InvalidEnvelope({ reason: "key_id missing or not a string" }))
  return Either.right({ ciphertext, nonce, wrappedDek, keyId })
}

const MAGIC = Buffer.from("AAPE", "ascii")
/** @since 0.1.0 */
export const FORMAT_VERSION = 1
/** @since 0.1.0 */
export const ALG_AES_256_GCM = 1

/**
 * The versioned binary encoding (format 1).
 *
 * @since 0.1.0
 * @category encoding
 */
export const encode = (envelope: Envelope): Uint8Array => {
  const keyId = Buffer.from(envelope.keyId, "utf8")
  if (keyId.length > 0xffff || envelope.wrappedDek.length > 0xffff || envelope.nonce.length > 0xff) {
    throw new RangeError("envelope field too large to encode")
  }
  const out = Buffer.alloc(
    4 +
      3 +
      envelope.nonce.length +
      2 +
      keyId.length +
      2 +
      envelope.wrappedDek.length +
      4 +
      envelope.ciphertext.length
  )
  let at = MAGIC.copy(out, 0)
  at = out.writeUInt8(FORMAT_VERSION, at)
  at = out.writeUInt8(ALG_AES_256_GCM, at)
  at = out.writeUInt8(envelope.nonce.length, at)
  at += Buffer.from(envelope.nonce).copy(out, at)
  at = out.writeUInt16BE(keyId.length, at)
  at += keyId.copy(out, at)
  at = out.writeUInt16BE(envelope.wrappedDek.length, at)
  at += Buffer.from(envelope.wrappedDek).copy(out, at)
  at = out.writeUInt32BE(envelope.ciphertext.length, at)
  Buffer.from(envelope.ciphertext).copy(out, at)
  return new Uint8Array(out.buffer, out.byteOffset, out.length)
}

/**
 * Decode the binary encoding; rejects unknown magic, format or algorithm, truncation and
 * trailing bytes with `InvalidEnvelope`.
 *
 * @since 0.1.0
 * @category encoding
 */
export const decode = (bytes: Uint8Array): Either.Either<Envelope, InvalidEnvelope> => {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
  const bad = (reason: string) => Either.left(new InvalidEnvelope({ reason }))
  if (buf.length < 7 || !buf.subarray(0, 4).equals(MAGIC)) return bad("not an aap envelope (bad magic)")
  if (buf[4] !== FORMAT_VERSION) return bad(`unsupported envelope format ${buf[4]}`)
  if (buf[5] !== ALG_AES_256_GCM) return bad(`unsupported algorithm ${buf[5]}`)
  let at = 6
  const take = (n: number): Buffer | undefined => {
    if (at + n > buf.length) return undefined
    const part = buf.subarray(at, at + n)
    at += n
    return part
  }
  const nonceLen = take(1)
  const nonce = nonceLen && take(nonceLen[0]!)
  const keyIdLen = take(2)
  const keyId = keyIdLen && take(keyIdLen.readUInt16BE(0))
  const wrappedLen = take(2)
  const wrapped = wrappedLen && take(wrappedLen.readUInt16BE(0))
  const ctLen = take(4)
  const ciphertext = ctLen && take(ctLen.readUInt32BE(0))
  if (nonce === undefined || keyId === undefined || wrapped === undefined || ciphertext === undefined) {
    return bad("truncated")
  }
  if (at !== buf.length) return bad("trailing bytes")
  if (keyId.length === 0) return bad("empty key id")
  return Either.right({
    ciphertext: new Uint8Array(ciphertext),
    nonce: new Uint8Array(nonce),
    wrappedDek: new Uint8Array(wrapped),
    keyId: keyId.toString("utf8")
  })
}
