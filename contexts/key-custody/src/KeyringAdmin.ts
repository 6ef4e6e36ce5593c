/**
 * Operator actions on a keyring that are not part of the `KeyProvider` port: crypto-shredding
 * a wallet. Provided by the local keyring (and the memory keyring); AWS KMS mode has no
 * per-wallet key to delete — see wiki/key-security.md for its counterpart.
 *
 * @since 0.1.0
 */
import { Context, type Effect } from "effect"
import type { KeyringWriteFailed } from "./KeyCustodyError.js"

/**
 * @since 0.1.0
 */
export interface KeyringAdminShape {
  /**
   * Crypto-shred `wallet`: delete every KEK version of the wallet from the keyring (written
   * atomically). Every DEK wrapped under them — so every secret version of the wallet — becomes
   * unrecoverable: `decryptDataKey` then fails with `KeyNotFound` (reason `shredded`).
   * New writes to the wallet get a new KEK. Returns the key ids that were destroyed.
   * Irreversible unless a keyring backup exists (which is why backups need the same care).
   */
  readonly shredWallet: (wallet: string) => Effect.Effect<ReadonlyArray<string>, KeyringWriteFailed>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class KeyringAdmin extends Context.Tag("@aap/key-custody/KeyringAdmin")<
  KeyringAdmin,
  KeyringAdminShape
>() {}
