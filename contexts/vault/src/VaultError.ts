/**
 * The typed errors of `@aap/vault`. They cross the wire (the broker's secret endpoints), so
 * they are `Schema.TaggedError`s with their HTTP status, and depend only on `effect` and
 * `@effect/platform`.
 *
 * Security rule: no error carries a secret value, ciphertext, key material or a message from
 * an SDK or parser. Wallets, names and versions are not secret and are named.
 *
 * @since 0.1.0
 */
import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

/** The wallet does not satisfy the rules (charset, length, `..`). */
export class InvalidWallet extends Schema.TaggedError<InvalidWallet>()(
  "InvalidWallet",
  { reason: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {
  override get message(): string {
    return `invalid wallet: ${this.reason}`
  }
}

/** The secret name does not satisfy the rules (charset, length, segments, `..`, `#`). */
export class InvalidSecretName extends Schema.TaggedError<InvalidSecretName>()(
  "InvalidSecretName",
  { reason: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {
  override get message(): string {
    return `invalid secret name: ${this.reason}`
  }
}

/** A requested version that cannot exist (not a positive integer, above 999,999,999). */
export class InvalidSecretVersion extends Schema.TaggedError<InvalidSecretVersion>()(
  "InvalidSecretVersion",
  { reason: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {
  override get message(): string {
    return `invalid secret version: ${this.reason}`
  }
}

/** An empty value. */
export class InvalidSecretValue extends Schema.TaggedError<InvalidSecretValue>()(
  "InvalidSecretValue",
  { reason: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {
  override get message(): string {
    return `invalid secret value: ${this.reason}`
  }
}

/** The value is larger than the limit (64 KiB of UTF-8). */
export class SecretTooLarge extends Schema.TaggedError<SecretTooLarge>()(
  "SecretTooLarge",
  { limitBytes: Schema.Number, sizeBytes: Schema.Number },
  HttpApiSchema.annotations({ status: 413 })
) {
  override get message(): string {
    return `secret value is ${this.sizeBytes} bytes; the limit is ${this.limitBytes}`
  }
}

/** No such secret, no such version, or the secret was deleted. */
export class SecretNotFound extends Schema.TaggedError<SecretNotFound>()(
  "SecretNotFound",
  { wallet: Schema.String, name: Schema.String, version: Schema.optional(Schema.Number) },
  HttpApiSchema.annotations({ status: 404 })
) {
  override get message(): string {
    return `secret ${this.wallet}/${this.name}${this.version === undefined ? "" : ` version ${this.version}`} not found`
  }
}

/**
 * The stored envelope does not open at its address: the ciphertext, nonce, wrapped key or key
 * id was altered, or the item was copied from another wallet, name or version. Never says which.
 */
export class SecretIntegrityError extends Schema.TaggedError<SecretIntegrityError>()(
  "SecretIntegrityError",
  { wallet: Schema.String, name: Schema.String, version: Schema.Number },
  HttpApiSchema.annotations({ status: 500 })
) {
  override get message(): string {
    return `secret ${this.wallet}/${this.name} version ${this.version} failed its integrity check`
  }
}

/** The key that wrapped this version is gone (removed master key version, shredded wallet). */
export class SecretUnrecoverable extends Schema.TaggedError<SecretUnrecoverable>()(
  "SecretUnrecoverable",
  { wallet: Schema.String, name: Schema.String, version: Schema.Number },
  HttpApiSchema.annotations({ status: 410 })
) {
  override get message(): string {
    return `secret ${this.wallet}/${this.name} version ${this.version} is unrecoverable: its key is gone`
  }
}

/**
 * The store or the keys could not be used (fail closed, DESIGN §2.3), or a write lost the race
 * for a new version too many times in a row.
 */
export class VaultUnavailable extends Schema.TaggedError<VaultUnavailable>()(
  "VaultUnavailable",
  { reason: Schema.Literal("store-unavailable", "store-throttled", "keys-unavailable", "contention") },
  HttpApiSchema.annotations({ status: 503 })
) {
  override get message(): string {
    return `vault unavailable (${this.reason})`
  }
}

/** A wallet, name, version or value that breaks the rules. */
export type InvalidInput = InvalidWallet | InvalidSecretName | InvalidSecretVersion

export type PutError =
  | InvalidWallet
  | InvalidSecretName
  | InvalidSecretValue
  | SecretTooLarge
  | VaultUnavailable

export type GetError =
  | InvalidInput
  | SecretNotFound
  | SecretIntegrityError
  | SecretUnrecoverable
  | VaultUnavailable

export type ListError = InvalidWallet | VaultUnavailable

export type DeleteError = InvalidWallet | InvalidSecretName | SecretNotFound | VaultUnavailable
