import * as Crypto from "node:crypto"
import { SystemKeys } from "@aap/key-custody"
import { Effect } from "effect"
import type { Item, Json, JsonObject } from "../CoordinationStore.js"

/** Canonical JSON: object keys sorted, no whitespace. */
export const canonical = (value: Json | undefined): string => {
  if (value === null || typeof value !== "object") return JSON.stringify(value)
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`
  const entries = Object.entries(value as JsonObject)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`
}

/**
 * What the MAC covers: the item's kind, keys, version, data and index keys (so an item
 * cannot be moved, replayed at another version, re-indexed or edited). Not the TTL
 * attribute, which only drives production clean-up.
 */
export const macInput = (kind: string, item: Omit<Item, "mac">): string =>
  `aap:v1:coordination:${kind}\n${canonical({
    pk: item.pk,
    sk: item.sk,
    version: item.version,
    data: item.data,
    byStatus: item.byStatus === undefined ? null : { pk: item.byStatus.pk, sk: item.byStatus.sk },
    byOwner: item.byOwner === undefined ? null : { pk: item.byOwner.pk, sk: item.byOwner.sk }
  })}`

export const sign = (
  kind: string,
  item: Omit<Item, "mac">
): Effect.Effect<Item, never, SystemKeys.SystemKeys> =>
  Effect.flatMap(SystemKeys.SystemKeys, (keys) =>
    Effect.map(keys.hmac(SystemKeys.Purpose.IntegrityMac, macInput(kind, item)), (mac) => ({ ...item, mac }))
  )

export const verify = (kind: string, item: Item): Effect.Effect<boolean, never, SystemKeys.SystemKeys> =>
  Effect.flatMap(SystemKeys.SystemKeys, (keys) =>
    Effect.map(keys.hmac(SystemKeys.Purpose.IntegrityMac, macInput(kind, item)), (expected) => {
      const a = Buffer.from(expected, "hex")
      const b = Buffer.from(/^[0-9a-f]{64}$/.test(item.mac) ? item.mac : "", "hex")
      return a.length === b.length && Crypto.timingSafeEqual(a, b)
    })
  )
