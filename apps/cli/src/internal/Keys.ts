/**
 * `aap keys init|rotate|status` over the local keyring (`$AAP_HOME/keys/keyring.json`).
 * Loaded lazily: `@aap/key-custody` pulls in the AWS KMS client.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { KeyProvider } from "@aap/key-custody"
import { Data, Effect } from "effect"

export class KeysError extends Data.TaggedError("KeysError")<{
  readonly message: string
  readonly code: number
}> {}

export const keyringPath = (home: string) => Path.join(home, "keys", "keyring.json")

const describeError = (e: unknown) =>
  new KeysError({
    message: e !== null && typeof e === "object" && "message" in e ? String(e.message) : String(e),
    code: 1
  })

/** Open (creating on first use) the keyring under `home` and run `f` with its provider. */
export const withProvider = <A>(
  home: string,
  f: (provider: KeyProvider.KeyProviderShape) => Effect.Effect<A, unknown>
): Effect.Effect<A, KeysError> =>
  Effect.flatMap(KeyProvider.KeyProvider, (p) => f(p)).pipe(
    Effect.provide(KeyProvider.layerLocalKeyringFromHome(home)),
    Effect.mapError(describeError)
  )

export const exists = (home: string) => Fs.existsSync(keyringPath(home))

export const render = (d: KeyProvider.Description): string =>
  [
    `keyring      ${d.location} (${d.provider})`,
    `primary key  ${d.primaryKeyId}`,
    `versions     ${d.masterKeys.length}`,
    ...d.masterKeys.map(
      (k) =>
        `  - ${k.keyId}${k.primary ? " (primary)" : ""}${k.createdAt === undefined ? "" : `  created ${k.createdAt}`}`
    ),
    ...(d.wallets === undefined
      ? []
      : [`wallets      ${d.wallets}${d.shreddedWallets ? ` (${d.shreddedWallets} shredded)` : ""}`])
  ].join("\n")

export const toJson = (d: KeyProvider.Description) => ({
  provider: d.provider,
  location: d.location,
  primaryKeyId: d.primaryKeyId,
  masterKeys: d.masterKeys,
  ...(d.wallets === undefined ? {} : { wallets: d.wallets }),
  ...(d.shreddedWallets === undefined ? {} : { shreddedWallets: d.shreddedWallets })
})
