/**
 * The `SecretStore` port: envelope-encrypted secrets per wallet, versioned (DESIGN §7).
 *
 * Rules every adapter keeps (checked by the conformance suite in `test/conformance.ts`):
 * - `put` writes a new version; concurrent writers of one name each get a distinct version
 *   and none is lost. Values are sealed by key-custody's `Envelope` with the AAD
 *   `aap:v1:vault:<wallet>:<name>:<version>`, so an envelope copied to another address fails to
 *   open (`SecretIntegrityError`).
 * - `get` reads the latest version or a given one; a deleted secret is `SecretNotFound`, also
 *   for versions written before the deletion.
 * - `list` returns names, versions and timestamps — never values, and reads no ciphertext.
 * - `delete` writes a tombstone version; it never removes history.
 * - Values are `Redacted` in and out; no error carries a value.
 *
 * Adapters: `layerDynamoDb` (the DynamoDB API: dynalite locally, AWS DynamoDB in production)
 * and `layerMemory` (process memory, same logic and envelopes, for tests and demos).
 *
 * @since 0.1.0
 */

import { KeyProvider } from "@aap/key-custody"
import { DynamoDb } from "@aap/local-stack"
import { Context, Effect, Layer, type Redacted } from "effect"
import { makeDynamoBackend, tableSpec as vaultTableSpec } from "./internal/dynamo.js"
import { makeMemoryBackend } from "./internal/memory.js"
import { makeStore } from "./internal/store.js"
import type { SecretSummary, SecretVersion } from "./Secret.js"
import {
  type DeleteError,
  type GetError,
  type ListError,
  type PutError,
  VaultUnavailable
} from "./VaultError.js"

/** A written version (put) or tombstone (delete). */
export type Written = SecretVersion

/** A secret as read: its value stays `Redacted` until it is written to the wire. */
export interface Secret {
  readonly name: string
  readonly version: number
  readonly createdAt: Date
  readonly value: Redacted.Redacted<string>
}

export interface SecretStoreShape {
  readonly put: (
    wallet: string,
    name: string,
    value: Redacted.Redacted<string>
  ) => Effect.Effect<Written, PutError>
  readonly get: (wallet: string, name: string, version?: number) => Effect.Effect<Secret, GetError>
  readonly list: (wallet: string) => Effect.Effect<ReadonlyArray<SecretSummary>, ListError>
  readonly delete: (wallet: string, name: string) => Effect.Effect<Written, DeleteError>
}

export class SecretStore extends Context.Tag("@aap/vault/SecretStore")<SecretStore, SecretStoreShape>() {}

/** The vault table as this context needs it (`PK`/`SK` strings, no indexes). */
export const tableSpec: DynamoDb.TableSpec = vaultTableSpec

/**
 * On the DynamoDB API. Building the layer bootstraps the `<prefix>-vault` table (idempotent;
 * fails with `VaultUnavailable` when the store cannot be reached).
 */
export const layerDynamoDb: Layer.Layer<
  SecretStore,
  VaultUnavailable,
  DynamoDb.DynamoDb | KeyProvider.KeyProvider
> = Layer.effect(
  SecretStore,
  Effect.gen(function* () {
    yield* DynamoDb.ensureTable(tableSpec).pipe(
      Effect.mapError(
        (error) =>
          new VaultUnavailable({
            reason: error._tag === "Throttled" ? "store-throttled" : "store-unavailable"
          })
      )
    )
    const backend = yield* makeDynamoBackend
    const keys = yield* KeyProvider.KeyProvider
    return makeStore(backend, keys)
  })
)

/** In process memory; each build of the layer is a new, empty store. Still encrypts. */
export const layerMemory: Layer.Layer<SecretStore, never, KeyProvider.KeyProvider> = Layer.effect(
  SecretStore,
  Effect.map(KeyProvider.KeyProvider, (keys) => makeStore(makeMemoryBackend(), keys))
)
