/**
 * `SystemKeys`: purpose-bound secret keys that belong to the installation, not to a wallet.
 *
 * Every key is derived with HKDF-SHA256 from one 256-bit system root secret:
 *   key = HKDF-SHA256(ikm = root, salt = "aap:v1:system-keys", info = "<kind>:<purpose>", 32)
 * with kind `hmac-sha256` (HMAC keys) or `ed25519` (the seed of an Ed25519 key pair).
 * The root is generated once and stored wrapped — under the primary UMK in the local keyring,
 * or as a KMS data key in KMS mode — so the derived keys stay the same across UMK rotation
 * (the root is re-wrapped, not replaced). ADR 0012.
 *
 * Known purposes: `audit-hmac` (audit HMAC of sensitive values), `audit-checkpoint` (Ed25519
 * signatures of audit checkpoints), `integrity-mac` (coordination item MACs). Any purpose of
 * 1-64 characters from `[a-z0-9._-]` is accepted; an invalid purpose is a defect (purposes are
 * constants in code). The same purpose string under the two kinds yields unrelated keys.
 *
 * @since 0.1.0
 */
import { createPublicKey, type KeyObject, verify as nodeVerify, randomBytes } from "node:crypto"
import { Context, type Effect, Layer, Redacted } from "effect"
import { makeSystemKeys } from "./internal/systemKeys.js"

/**
 * Purposes used by the other contexts.
 *
 * @since 0.1.0
 */
export const Purpose = {
  /** HMAC-SHA256 of sensitive values in audit events (`hmac` field). */
  AuditHmac: "audit-hmac",
  /** Ed25519 key that signs audit checkpoints. */
  AuditCheckpoint: "audit-checkpoint",
  /** HMAC-SHA256 integrity MACs of coordination items. */
  IntegrityMac: "integrity-mac"
} as const

/**
 * An Ed25519 key pair derived for one purpose. The private key never leaves this object.
 *
 * @since 0.1.0
 */
export interface SigningKey {
  readonly purpose: string
  /** `ed25519:` + the first 16 hex digits of the raw public key; names the key in checkpoints. */
  readonly keyId: string
  readonly publicKey: KeyObject
  /** The 32-byte raw public key (RFC 8032), e.g. for publishing beside checkpoints. */
  readonly publicKeyRaw: Uint8Array
  readonly sign: (data: Uint8Array | string) => Uint8Array
  readonly verify: (data: Uint8Array | string, signature: Uint8Array) => boolean
}

/**
 * @since 0.1.0
 */
export interface SystemKeysShape {
  /** HMAC-SHA256 of `data` (UTF-8 if a string) under the purpose's key, lowercase hex. */
  readonly hmac: (purpose: string, data: Uint8Array | string) => Effect.Effect<string>
  /** The purpose's 32-byte HMAC key (a copy). */
  readonly hmacKey: (purpose: string) => Effect.Effect<Redacted.Redacted<Uint8Array>>
  /** The purpose's Ed25519 key pair (same object on every call). */
  readonly signingKey: (purpose: string) => Effect.Effect<SigningKey>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class SystemKeys extends Context.Tag("@aap/key-custody/SystemKeys")<SystemKeys, SystemKeysShape>() {}

/**
 * System keys from a given root secret (32 bytes).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (root: Redacted.Redacted<Uint8Array>): SystemKeysShape => makeSystemKeys(root)

/**
 * System keys from a random root, for tests. Each build of the layer is a new root.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<SystemKeys> = Layer.sync(SystemKeys, () =>
  makeSystemKeys(Redacted.make(new Uint8Array(randomBytes(32))))
)

/**
 * System keys from a fixed root (tests that need stable keys across layers).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromRoot = (root: Redacted.Redacted<Uint8Array>): Layer.Layer<SystemKeys> =>
  Layer.sync(SystemKeys, () => makeSystemKeys(root))

/**
 * Verify an Ed25519 signature with only a raw 32-byte public key (what a checkpoint verifier
 * outside the broker holds). Never throws.
 *
 * @since 0.1.0
 */
export const verifyEd25519 = (
  publicKeyRaw: Uint8Array,
  data: Uint8Array | string,
  signature: Uint8Array
): boolean => {
  try {
    const publicKey = createPublicKey({
      key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(publicKeyRaw).toString("base64url") },
      format: "jwk"
    })
    return nodeVerify(null, typeof data === "string" ? Buffer.from(data, "utf8") : data, publicKey, signature)
  } catch {
    return false
  }
}
