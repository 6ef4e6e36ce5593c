/**
 * The keys the audit log uses, behind a port of its own: an HMAC-SHA256 key (purpose
 * `audit-hmac`) for sensitive values, and an Ed25519 key that signs checkpoints. Adapters:
 * `layerEphemeral` (fresh keys, for tests), `make` (keys you hold), and the key-custody
 * adapter.
 *
 * @since 0.1.0
 */
import * as Crypto from "node:crypto"
import { SystemKeys } from "@aap/key-custody"
import { Context, Data, Effect, Layer, Redacted } from "effect"

/**
 * A key operation failed (key material missing or unreadable, KMS unreachable). Appends that
 * need it fail with `AuditUnavailable`.
 *
 * @since 0.1.0
 * @category errors
 */
export class AuditKeysError extends Data.TaggedError("AuditKeysError")<{ readonly message: string }> {}

/**
 * An Ed25519 public key: the raw 32 bytes, and the id checkpoints name it by.
 *
 * @since 0.1.0
 * @category models
 */
export interface PublicKey {
  readonly keyId: string
  readonly publicKey: Uint8Array
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Signature {
  readonly keyId: string
  readonly signature: Uint8Array
}

/**
 * @since 0.1.0
 * @category models
 */
export interface AuditKeysShape {
  /** HMAC-SHA256 of `data` under the audit HMAC key (32 bytes). */
  readonly hmac: (data: Uint8Array) => Effect.Effect<Uint8Array, AuditKeysError>
  /** Ed25519 signature of `data` with the current checkpoint key. */
  readonly sign: (data: Uint8Array) => Effect.Effect<Signature, AuditKeysError>
  /** Every checkpoint public key that may have signed (current and retired). */
  readonly publicKeys: Effect.Effect<ReadonlyArray<PublicKey>, AuditKeysError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class AuditKeys extends Context.Tag("@aap/audit/AuditKeys")<AuditKeys, AuditKeysShape>() {}

const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex")

/**
 * Ed25519 private key from its 32-byte seed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const ed25519FromSeed = (seed: Uint8Array): Crypto.KeyObject =>
  Crypto.createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_PREFIX, Buffer.from(seed)]),
    format: "der",
    type: "pkcs8"
  })

/**
 * The raw 32 bytes of an Ed25519 public key.
 *
 * @since 0.1.0
 * @category utils
 */
export const rawPublicKey = (key: Crypto.KeyObject): Uint8Array => {
  const jwk = key.export({ format: "jwk" })
  return Buffer.from(jwk.x ?? "", "base64url")
}

/**
 * Verifies an Ed25519 signature against a raw 32-byte public key.
 *
 * @since 0.1.0
 * @category utils
 */
export const verifySignature = (publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean => {
  try {
    const key = Crypto.createPublicKey({
      key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(publicKey).toString("base64url") },
      format: "jwk"
    })
    return Crypto.verify(null, data, key, signature)
  } catch {
    return false
  }
}

/**
 * An `AuditKeys` over key material you hold: a 32-byte HMAC key and a 32-byte Ed25519 seed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: {
  readonly hmacKey: Redacted.Redacted<Uint8Array>
  readonly signingSeed: Redacted.Redacted<Uint8Array>
  readonly keyId: string
  readonly retired?: ReadonlyArray<PublicKey> | undefined
}): AuditKeysShape => {
  const hmacKey = Buffer.from(Redacted.value(options.hmacKey))
  if (hmacKey.length < 32) throw new AuditKeysError({ message: "audit HMAC key must be at least 32 bytes" })
  const privateKey = ed25519FromSeed(Redacted.value(options.signingSeed))
  const publicKey: PublicKey = {
    keyId: options.keyId,
    publicKey: rawPublicKey(Crypto.createPublicKey(privateKey))
  }
  const publicKeys = [publicKey, ...(options.retired ?? [])]
  return AuditKeys.of({
    hmac: (data) =>
      Effect.sync(() => new Uint8Array(Crypto.createHmac("sha256", hmacKey).update(data).digest())),
    sign: (data) =>
      Effect.sync(() => ({
        keyId: options.keyId,
        signature: new Uint8Array(Crypto.sign(null, data, privateKey))
      })),
    publicKeys: Effect.succeed(publicKeys)
  })
}

/**
 * Fresh random keys for the life of the layer. For tests and for `AuditLog.layerMemory`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerEphemeral: Layer.Layer<AuditKeys> = Layer.sync(AuditKeys, () =>
  make({
    hmacKey: Redacted.make(new Uint8Array(Crypto.randomBytes(32))),
    signingSeed: Redacted.make(new Uint8Array(Crypto.randomBytes(32))),
    keyId: `ephemeral-${Crypto.randomBytes(4).toString("hex")}`
  })
)

/**
 * The audit keys from key-custody's system keys: HMAC under purpose `audit-hmac`, checkpoints
 * signed by the Ed25519 key of purpose `audit-checkpoint` (both derived from the installation's
 * root secret, so they survive UMK rotation).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSystemKeys: Layer.Layer<AuditKeys, never, SystemKeys.SystemKeys> = Layer.effect(
  AuditKeys,
  Effect.gen(function* () {
    const system = yield* SystemKeys.SystemKeys
    const signing = yield* system.signingKey(SystemKeys.Purpose.AuditCheckpoint)
    const publicKeys: ReadonlyArray<PublicKey> = [{ keyId: signing.keyId, publicKey: signing.publicKeyRaw }]
    return AuditKeys.of({
      hmac: (data) =>
        Effect.map(
          system.hmac(SystemKeys.Purpose.AuditHmac, data),
          (hex) => new Uint8Array(Buffer.from(hex, "hex"))
        ),
      sign: (data) => Effect.sync(() => ({ keyId: signing.keyId, signature: signing.sign(data) })),
      publicKeys: Effect.succeed(publicKeys)
    })
  })
)
