/**
 * The typed errors of `@aap/key-custody`.
 *
 * Security rule: no error carries key material, plaintext, ciphertext or a message from a
 * parser or an SDK (those can echo input). `DecryptFailed` carries nothing at all: it does not
 * say whether the tag, the nonce, the AAD, the wrapped key or the key id was wrong.
 *
 * These are `Schema.TaggedError`s so they can be serialized (worker results, logs). This
 * context has no HTTP contract; the context that exposes an operation over HTTP maps them to
 * its own error and status (keys unavailable → 503, ADR 0013).
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * A key id that is well formed and consistent with its wrapped key, but whose key this
 * provider does not hold: a removed UMK version, a shredded wallet, a deleted KMS key.
 *
 * @since 0.1.0
 */
export class KeyNotFound extends Schema.TaggedError<KeyNotFound>()("KeyNotFound", {
  keyId: Schema.String,
  reason: Schema.Literal("unknown", "shredded", "missing-master-key")
}) {
  override get message(): string {
    switch (this.reason) {
      case "shredded":
        return `key ${this.keyId} was shredded; data wrapped under it is unrecoverable`
      case "missing-master-key":
        return `key ${this.keyId} is wrapped under a master key version the keyring no longer holds`
      default:
        return `key ${this.keyId} is not in the keyring`
    }
  }
}

/**
 * The keyring file exists but cannot be read or parsed (permissions, truncation, corruption,
 * unknown format). The reason never quotes the file's content.
 *
 * @since 0.1.0
 */
export class KeyringUnreadable extends Schema.TaggedError<KeyringUnreadable>()("KeyringUnreadable", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `keyring ${this.path} is unreadable: ${this.reason}`
  }
}

/**
 * The keyring file could not be written (rotation, first KEK of a wallet, shredding). The
 * previous file is intact: writes go to a temporary file that is renamed into place.
 *
 * @since 0.1.0
 */
export class KeyringWriteFailed extends Schema.TaggedError<KeyringWriteFailed>()("KeyringWriteFailed", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `keyring ${this.path} could not be written: ${this.reason}`
  }
}

/**
 * The keyring file (or its directory) is accessible to group or others. Refused until fixed.
 *
 * @since 0.1.0
 */
export class KeyringInsecure extends Schema.TaggedError<KeyringInsecure>()("KeyringInsecure", {
  path: Schema.String,
  mode: Schema.String,
  fix: Schema.String
}) {
  override get message(): string {
    return `keyring ${this.path} has mode ${this.mode} and is accessible to group or others; refusing to use it. Fix it with: ${this.fix}`
  }
}

/**
 * Decryption or unwrapping failed. Deliberately says nothing about why.
 *
 * @since 0.1.0
 */
export class DecryptFailed extends Schema.TaggedError<DecryptFailed>()("DecryptFailed", {}) {
  override get message(): string {
    return "decryption failed"
  }
}

/**
 * AWS KMS could not be used: unreachable, throttled, access denied, key disabled or pending
 * deletion, internal error. Fail closed (DESIGN §2.3): the request fails, typically with 503.
 *
 * @since 0.1.0
 */
export class KmsUnavailable extends Schema.TaggedError<KmsUnavailable>()("KmsUnavailable", {
  reason: Schema.Literal(
    "unreachable",
    "throttled",
    "access-denied",
    "key-disabled",
    "key-state",
    "internal"
  ),
  keyId: Schema.optional(Schema.String)
}) {
  override get message(): string {
    return `AWS KMS unavailable (${this.reason})${this.keyId === undefined ? "" : ` for key ${this.keyId}`}`
  }
}

/**
 * An encryption context, address or purpose that does not satisfy the rules (e.g. a wallet
 * with a `:`). Says which field and why, never echoing a value that could be secret.
 *
 * @since 0.1.0
 */
export class InvalidKeyContext extends Schema.TaggedError<InvalidKeyContext>()("InvalidKeyContext", {
  field: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `invalid ${this.field}: ${this.reason}`
  }
}

/**
 * A binary envelope or attribute record that cannot be decoded (bad magic, unknown format
 * version, truncated, missing attribute).
 *
 * @since 0.1.0
 */
export class InvalidEnvelope extends Schema.TaggedError<InvalidEnvelope>()("InvalidEnvelope", {
  reason: Schema.String
}) {
  override get message(): string {
    return `invalid envelope: ${this.reason}`
  }
}

/**
 * Errors of the `KeyProvider` port.
 *
 * @since 0.1.0
 */
export type KeyProviderError =
  | KeyNotFound
  | DecryptFailed
  | KmsUnavailable
  | KeyringWriteFailed
  | InvalidKeyContext

/**
 * Errors raised while loading a keyring when a layer is built.
 *
 * @since 0.1.0
 */
export type KeyringLoadError = KeyringUnreadable | KeyringInsecure | KeyringWriteFailed
