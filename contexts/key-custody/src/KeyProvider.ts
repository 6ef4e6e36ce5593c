/**
 * The `KeyProvider` port: data keys for envelope encryption, bound to an encryption context.
 *
 * Security rules for every adapter (checked by the conformance suite):
 * - `generateDataKey` returns a fresh 256-bit DEK; the caller owns (and may wipe) the bytes.
 * - The context `{ wallet, purpose }` is bound into every wrap: a wrapped key presented with
 *   another context, or with a key id that does not match it, fails with `DecryptFailed`.
 * - `DecryptFailed` never says why; no error carries key material.
 * - A key id that is consistent with its wrap but whose key is gone (removed master key
 *   version, shredded wallet, deleted KMS key) fails with `KeyNotFound`.
 *
 * @since 0.1.0
 */
import * as path from "node:path"
import type { KMSClient } from "@aws-sdk/client-kms"
import { Config, type ConfigError, Context, Effect, Layer, Option, type Redacted } from "effect"
import { makeAwsKms } from "./internal/awsKms.js"
import { freshDoc, KeyringCore, memoryStorage } from "./internal/keyring.js"
import { keyringPathFromHome, loadLocalKeyring } from "./internal/localFile.js"
import { makeSystemKeys } from "./internal/systemKeys.js"
import type { KeyProviderError, KeyringLoadError, KmsUnavailable } from "./KeyCustodyError.js"
import { KeyringAdmin } from "./KeyringAdmin.js"
import { SystemKeys } from "./SystemKeys.js"

/**
 * The encryption context bound into a wrap. `wallet`: 1-128 of `[A-Za-z0-9._-]`; `purpose`:
 * 1-64 of `[a-z0-9._-]` (`vault` for vault secrets).
 *
 * @since 0.1.0
 */
export interface EncryptionContext {
  readonly wallet: string
  readonly purpose: string
}

/**
 * A fresh data key: the plaintext (caller-owned bytes), the wrapped form to store and the id
 * of the key that wrapped it.
 *
 * @since 0.1.0
 */
export interface DataKey {
  readonly plaintext: Redacted.Redacted<Uint8Array>
  readonly wrapped: Uint8Array
  readonly keyId: string
}

/**
 * Result of `rewrap`: the wrapped DEK under the current key (`rewrapped: false` when it already
 * was, in which case `wrapped` and `keyId` are the inputs).
 *
 * @since 0.1.0
 */
export interface Rewrapped {
  readonly wrapped: Uint8Array
  readonly keyId: string
  readonly rewrapped: boolean
}

/**
 * What a provider says about itself (`aap keys status`, `/readyz`). Holds no key material.
 *
 * @since 0.1.0
 */
export interface Description {
  readonly provider: "local-keyring" | "memory" | "aws-kms"
  /** Keyring path, `memory`, or the configured KMS key id. */
  readonly location: string
  readonly primaryKeyId: string
  readonly masterKeys: ReadonlyArray<{
    readonly keyId: string
    readonly primary: boolean
    readonly createdAt?: string
  }>
  readonly wallets?: number
  readonly shreddedWallets?: number
  readonly keyState?: string
}

/**
 * @since 0.1.0
 */
export interface KeyProviderShape {
  /** A fresh DEK for `context`, and its wrap under the current key. */
  readonly generateDataKey: (context: EncryptionContext) => Effect.Effect<DataKey, KeyProviderError>
  /** Unwrap a DEK; `context` and `keyId` must be the ones it was generated with. */
  readonly decryptDataKey: (
    context: EncryptionContext,
    wrapped: Uint8Array,
    keyId: string
  ) => Effect.Effect<Redacted.Redacted<Uint8Array>, KeyProviderError>
  /** Move a wrapped DEK to the current key without touching the content it protects. */
  readonly rewrap: (
    context: EncryptionContext,
    wrapped: Uint8Array,
    keyId: string
  ) => Effect.Effect<Rewrapped, KeyProviderError>
  /** A new primary master key version; older versions keep decrypting. */
  readonly rotate: () => Effect.Effect<Description, KeyProviderError>
  readonly describe: () => Effect.Effect<Description, KeyProviderError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class KeyProvider extends Context.Tag("@aap/key-custody/KeyProvider")<
  KeyProvider,
  KeyProviderShape
>() {}

/** The purpose used by `Envelope` for vault secrets. */
export const VAULT_PURPOSE = "vault"

const fromCore = (core: KeyringCore): KeyProviderShape => ({
  generateDataKey: (context) => core.generateDataKey(context),
  decryptDataKey: (context, wrapped, keyId) => core.decryptDataKey(context, wrapped, keyId),
  rewrap: (context, wrapped, keyId) => core.rewrap(context, wrapped, keyId),
  rotate: () => core.rotate(),
  describe: () => Effect.sync(() => core.describeSync())
})

const coreLayers = <E, R>(
  load: Effect.Effect<KeyringCore, E, R>
): Layer.Layer<KeyProvider | SystemKeys | KeyringAdmin, E, R> =>
  Layer.effectContext(
    Effect.map(load, (core) =>
      Context.make(KeyProvider, fromCore(core)).pipe(
        Context.add(SystemKeys, makeSystemKeys(core.rootSecret())),
        Context.add(KeyringAdmin, {
          shredWallet: (wallet) => core.shredWallet(wallet)
        })
      )
    )
  )

/**
 * A test keyring in memory: same hierarchy and formats as the local keyring, nothing written
 * anywhere. Each build of the layer is a new keyring. Also provides `SystemKeys` and
 * `KeyringAdmin` (shredding).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<KeyProvider | SystemKeys | KeyringAdmin> = coreLayers(
  Effect.orDie(Effect.suspend(() => KeyringCore.load(freshDoc(), memoryStorage, "memory", "memory")))
)

/**
 * The local keyring file (`$AAP_HOME/keys/keyring.json`): created on first use with mode
 * 0600 in a 0700 directory; refused when group- or world-accessible; written atomically.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerLocalKeyring = (options: {
  readonly path: string
}): Layer.Layer<KeyProvider | SystemKeys | KeyringAdmin, KeyringLoadError> =>
  coreLayers(loadLocalKeyring(options.path))

/**
 * `layerLocalKeyring` at `$AAP_HOME/keys/keyring.json` (`AAP_HOME` defaults to `./.aap`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerLocalKeyringFromHome = (
  home: string
): Layer.Layer<KeyProvider | SystemKeys | KeyringAdmin, KeyringLoadError> =>
  layerLocalKeyring({ path: keyringPathFromHome(home) })

/**
 * AWS KMS: each DEK comes from `GenerateDataKey` (AES_256) under `keyId` with the encryption
 * context `{ wallet, purpose }`, and is unwrapped by `Decrypt` with the same context. The
 * `SystemKeys` root secret is a KMS data key stored wrapped at `systemRootPath` (created on
 * first start, decrypted once per start). `client` defaults to a `KMSClient` for `region`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerAwsKms = (options: {
  readonly keyId: string
  readonly systemRootPath: string
  readonly region?: string
  readonly client?: KMSClient
}): Layer.Layer<KeyProvider | SystemKeys, KmsUnavailable | KeyringLoadError | KeyProviderError> =>
  Layer.effectContext(
    Effect.map(makeAwsKms(options), ({ provider, root }) =>
      Context.make(KeyProvider, provider).pipe(Context.add(SystemKeys, makeSystemKeys(root)))
    )
  )

/**
 * The mode chosen by configuration (DESIGN §13): `AAP_KMS_KEY_ID` set → `layerAwsKms` (in
 * `AWS_REGION`, system root at `$AAP_HOME/keys/kms-system-root.json`); unset →
 * `layerLocalKeyring` at `$AAP_HOME/keys/keyring.json`. `AAP_HOME` defaults to `./.aap`.
 * `KeyringAdmin` is only available from `layerLocalKeyring` directly.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<
  KeyProvider | SystemKeys,
  ConfigError.ConfigError | KeyringLoadError | KeyProviderError
> = Layer.unwrapEffect(
  Effect.gen(function* () {
    const home = yield* Config.string("AAP_HOME").pipe(Config.withDefault("./.aap"))
    const kmsKeyId = yield* Config.option(Config.nonEmptyString("AAP_KMS_KEY_ID"))
    const region = yield* Config.option(Config.nonEmptyString("AWS_REGION"))
    return Option.match(kmsKeyId, {
      onNone: (): Layer.Layer<KeyProvider | SystemKeys, KeyringLoadError | KeyProviderError> =>
        layerLocalKeyringFromHome(home),
      onSome: (keyId) =>
        layerAwsKms({
          keyId,
          systemRootPath: path.join(home, "keys", "kms-system-root.json"),
          ...(Option.isSome(region) ? { region: region.value } : {})
        })
    })
  })
)
