/**
 * The vault's vocabulary: wallets, secret names and versions with their rules, and the
 * metadata the vault shows (never values). Depends only on `effect`, so the HTTP contract
 * uses the same schemas.
 *
 * Rules:
 * - wallet: 1-128 characters of `[A-Za-z0-9._-]`, starting with a letter or digit, no `..`
 *   (the same alphabet as key-custody's encryption context).
 * - name: 1-256 characters of `/`-separated segments, each of `[A-Za-z0-9._-]`, no empty
 *   segment (`a//b`, leading or trailing `/`), no `.` segment and no `..` anywhere. `#` never
 *   appears, so the sort key `secret#<name>#v<version>` is unambiguous. Example:
 *   `openrouter/api-key`.
 * - version: 1 to 999,999,999 (stored zero-padded to nine digits).
 * - value: 1 byte to 64 KiB of UTF-8.
 *
 * @since 0.1.0
 */
import { type Effect, Either, Schema } from "effect"
import { InvalidSecretName, InvalidSecretVersion, InvalidWallet } from "./VaultError.js"

/** 64 KiB. */
export const MAX_VALUE_BYTES = 65_536
export const MAX_VERSION = 999_999_999
export const MAX_NAME_LENGTH = 256

const WALLET = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/
const SEGMENT = /^[A-Za-z0-9._-]+$/

/** Why a wallet is invalid, or undefined. */
export const walletProblem = (wallet: string): string | undefined => {
  if (!WALLET.test(wallet))
    return "expected 1-128 characters of [A-Za-z0-9._-] starting with a letter or digit"
  if (wallet.includes("..")) return "must not contain '..'"
  return undefined
}

/** Why a secret name is invalid, or undefined. */
export const nameProblem = (name: string): string | undefined => {
  if (name.length === 0 || name.length > MAX_NAME_LENGTH) return `expected 1-${MAX_NAME_LENGTH} characters`
  if (name.includes("#")) return "must not contain '#'"
  if (name.includes("..")) return "must not contain '..'"
  const segments = name.split("/")
  if (segments.some((segment) => segment.length === 0))
    return "must not have empty segments ('//', leading or trailing '/')"
  if (segments.some((segment) => segment === ".")) return "must not have '.' segments"
  if (!segments.every((segment) => SEGMENT.test(segment)))
    return "expected segments of [A-Za-z0-9._-] separated by '/'"
  return undefined
}

/** Why a version is invalid, or undefined. */
export const versionProblem = (version: number): string | undefined =>
  Number.isSafeInteger(version) && version >= 1 && version <= MAX_VERSION
    ? undefined
    : `expected an integer from 1 to ${MAX_VERSION}`

export const validateWallet = (wallet: string): Either.Either<string, InvalidWallet> => {
  const reason = walletProblem(wallet)
  return reason === undefined ? Either.right(wallet) : Either.left(new InvalidWallet({ reason }))
}

export const validateName = (name: string): Either.Either<string, InvalidSecretName> => {
  const reason = nameProblem(name)
  return reason === undefined ? Either.right(name) : Either.left(new InvalidSecretName({ reason }))
}

export const validateVersion = (version: number): Either.Either<number, InvalidSecretVersion> => {
  const reason = versionProblem(version)
  return reason === undefined ? Either.right(version) : Either.left(new InvalidSecretVersion({ reason }))
}

/** As effects, for use in pipelines. */
export const checkWallet = (wallet: string): Effect.Effect<string, InvalidWallet> => validateWallet(wallet)
export const checkName = (name: string): Effect.Effect<string, InvalidSecretName> => validateName(name)

/** A wallet as a schema (for path parameters). */
export const Wallet = Schema.String.pipe(
  Schema.filter((wallet) => walletProblem(wallet) ?? true, { identifier: "Wallet" })
)

/** A secret name as a schema. */
export const SecretName = Schema.String.pipe(
  Schema.filter((name) => nameProblem(name) ?? true, { identifier: "SecretName" })
)

/** What the vault shows about a secret: never its value. */
export class SecretSummary extends Schema.Class<SecretSummary>("SecretSummary")({
  name: SecretName,
  /** The latest version. */
  version: Schema.Number,
  /** How many versions hold a value (tombstones not counted). */
  versions: Schema.Number,
  /** When the first version was written. */
  createdAt: Schema.Date,
  /** When the latest version was written. */
  updatedAt: Schema.Date
}) {}

/** The result of a write. */
export class SecretVersion extends Schema.Class<SecretVersion>("SecretVersion")({
  name: SecretName,
  version: Schema.Number,
  createdAt: Schema.Date
}) {}
