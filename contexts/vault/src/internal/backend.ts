import type { Effect, Option } from "effect"

/** The envelope attributes of a stored version, as plain values or DynamoDB attribute values. */
export interface EnvelopeRecord {
  readonly content_encrypted?: unknown
  readonly content_nonce?: unknown
  readonly wrapped_dek?: unknown
  readonly key_id?: unknown
}

/** One stored version: a value (its envelope attributes) or a tombstone. */
export interface Row {
  readonly wallet: string
  readonly name: string
  readonly version: number
  /** Epoch milliseconds. */
  readonly createdAt: number
  /** The envelope attributes (`content_encrypted`, ...) or none for a tombstone. */
  readonly envelope: Option.Option<EnvelopeRecord>
}

export type RowMeta = Omit<Row, "envelope"> & { readonly tombstone: boolean }

/** Why a backend call failed (already translated from the store's own errors). */
export type BackendFailure = "store-unavailable" | "store-throttled"

export class Conflict {
  readonly _tag = "Conflict"
}

export class BackendError {
  readonly _tag = "BackendError"
  constructor(readonly reason: BackendFailure) {}
}

/** Raw, unvalidated storage of versions; the store logic lives in `store.ts`. */
export interface Backend {
  readonly latest: (wallet: string, name: string) => Effect.Effect<Option.Option<Row>, BackendError>
  readonly at: (
    wallet: string,
    name: string,
    version: number
  ) => Effect.Effect<Option.Option<Row>, BackendError>
  /** Whether a tombstone exists at a version above `version`. */
  readonly deletedAfter: (
    wallet: string,
    name: string,
    version: number
  ) => Effect.Effect<boolean, BackendError>
  /** Insert a version that must not exist yet. */
  readonly insert: (row: Row) => Effect.Effect<void, BackendError | Conflict>
  /** Every version's metadata in the wallet (no envelopes), any order. */
  readonly scan: (wallet: string) => Effect.Effect<ReadonlyArray<RowMeta>, BackendError>
}
