/**
 * Records of upstream keys minted per grant (`bearer-token` with `provision`), so they can be
 * revoked when the session ends — by this broker, another one, or the worker after a crash.
 * A record holds the provider's key HASH, never the key (ADR 0048).
 *
 * Stored in the coordination table through `CoordinationStore` (memory or DynamoDB) with the
 * same integrity MAC as sessions:
 * - item `pk = provisioned#<session>`, `sk = key#<hash>`;
 * - `byOwner`: `provisioned-session#<session>` → every key of a session (revoke on end);
 * - `byStatus` (sparse, removed once revoked): `provisioned-live` / `<expiresAt>#<session>#<hash>`
 *   → keys whose session deadline passed, for the worker's sweep, without a scan.
 *
 * @since 0.1.0
 */

import type { SystemKeys } from "@aap/key-custody"
import { Context, Effect, Layer, Option, Schema } from "effect"
import * as Store from "../CoordinationStore.js"
import { type InvalidCursor, Tampered, type Unavailable } from "../Errors.js"
import * as Integrity from "../internal/integrity.js"

const KIND = "provisioned-key"
const LIVE = "provisioned-live"

export const ProvisionedKey = Schema.Struct({
  session: Schema.String,
  provider: Schema.Literal("openrouter"),
  hash: Schema.String,
  wallet: Schema.String,
  capability: Schema.String,
  /** Vault name (in `wallet`) of the management key needed to revoke. */
  managementSecret: Schema.String,
  /** Epoch seconds. */
  createdAt: Schema.Int,
  /** The session's deadline, epoch seconds (also sent upstream as the key's `expires_at`). */
  expiresAt: Schema.Int,
  revokedAt: Schema.optional(Schema.Int)
})
export type ProvisionedKey = typeof ProvisionedKey.Type

export interface ProvisionedKeysShape {
  readonly record: (key: ProvisionedKey) => Effect.Effect<void, Unavailable>
  /** Every key minted for the session (revoked or not). */
  readonly forSession: (
    session: string
  ) => Effect.Effect<ReadonlyArray<ProvisionedKey>, Tampered | Unavailable>
  /** Unrevoked keys whose session deadline is at or before `now` (epoch seconds), oldest first. */
  readonly due: (
    now: number,
    limit: number
  ) => Effect.Effect<ReadonlyArray<ProvisionedKey>, Tampered | Unavailable>
  /** Idempotent. */
  readonly markRevoked: (key: ProvisionedKey, at: number) => Effect.Effect<void, Tampered | Unavailable>
}

export class ProvisionedKeys extends Context.Tag("@aap/agent-coordination/delivery/ProvisionedKeys")<
  ProvisionedKeys,
  ProvisionedKeysShape
>() {}

const pad = (n: number) => String(Math.max(0, Math.floor(n))).padStart(12, "0")
const encode = Schema.encodeSync(ProvisionedKey)
const decode = Schema.decodeUnknownOption(ProvisionedKey)

const toItem = (k: ProvisionedKey, version: number): Omit<Store.Item, "mac"> => ({
  pk: `provisioned#${k.session}`,
  sk: `key#${k.hash}`,
  version,
  data: encode(k),
  byOwner: { pk: `provisioned-session#${k.session}`, sk: `key#${k.hash}` },
  ...(k.revokedAt === undefined
    ? { byStatus: { pk: LIVE, sk: `${pad(k.expiresAt)}#${k.session}#${k.hash}` } }
    : {}),
  // Kept 30 days past the deadline for the record, then DynamoDB TTL may remove it.
  expireAt: k.expiresAt + 30 * 24 * 3600
})

export const make: Effect.Effect<
  ProvisionedKeysShape,
  never,
  Store.CoordinationStore | SystemKeys.SystemKeys
> = Effect.gen(function* () {
  const store = yield* Store.CoordinationStore
  const context = yield* Effect.context<SystemKeys.SystemKeys>()
  const sign = (k: ProvisionedKey, version: number) =>
    Integrity.sign(KIND, toItem(k, version)).pipe(Effect.provide(context))
  const tampered = (item: Store.Item) =>
    new Tampered({ message: `stored item ${item.pk} failed its integrity check`, kind: "session" })

  const read = (item: Store.Item): Effect.Effect<ProvisionedKey, Tampered> =>
    Effect.gen(function* () {
      const ok = yield* Integrity.verify(KIND, item).pipe(Effect.provide(context))
      const k = decode(item.data)
      if (!ok || Option.isNone(k) || item.pk !== `provisioned#${k.value.session}`)
        return yield* tampered(item)
      return k.value
    })

  const all = (query: Omit<Store.Query, "cursor">, max: number) =>
    Effect.gen(function* () {
      const out: Array<ProvisionedKey> = []
      let cursor: string | undefined
      do {
        const page = yield* store.query({ ...query, ...(cursor === undefined ? {} : { cursor }) })
        for (const item of page.items) out.push(yield* read(item))
        cursor = Option.getOrUndefined(page.cursor)
      } while (cursor !== undefined && out.length < max)
      return out.slice(0, max)
    }).pipe(
      Effect.catchTag("InvalidCursor", (e: InvalidCursor) => Effect.die(e)) // our own cursors only
    )

  return {
    record: (k) =>
      sign(k, 1).pipe(
        Effect.flatMap((item) => store.put(item, Store.absent)),
        // The same hash twice is the same key: nothing to add.
        Effect.catchTag("ConditionFailed", () => Effect.void)
      ),
    forSession: (session) =>
      all({ index: "byOwner", pk: `provisioned-session#${session}`, limit: 100 }, 10_000),
    due: (now, limit) =>
      all(
        {
          index: "byStatus",
          pk: LIVE,
          range: { _tag: "Between", low: pad(0), high: `${pad(now)}#\uffff` },
          limit: Math.min(limit, 100)
        },
        limit
      ),
    markRevoked: (k, at) =>
      Effect.gen(function* () {
        const found = yield* store.get(`provisioned#${k.session}`, `key#${k.hash}`)
        if (Option.isNone(found)) return
        const current = yield* read(found.value)
        if (current.revokedAt !== undefined) return
        const item = yield* sign({ ...current, revokedAt: at }, found.value.version + 1)
        yield* store
          .put(item, Store.atVersion(found.value.version))
          .pipe(Effect.catchTag("ConditionFailed", () => Effect.void)) // another worker won; fine
      })
  }
})

export const layer: Layer.Layer<ProvisionedKeys, never, Store.CoordinationStore | SystemKeys.SystemKeys> =
  Layer.effect(ProvisionedKeys, make)
