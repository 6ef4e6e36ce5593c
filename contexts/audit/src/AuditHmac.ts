/**
 * HMAC of sensitive values (DESIGN §8). The log stores `HMAC-SHA256(audit key, value)`
 * instead of a value; an operator who holds a value computes the same HMAC to find the
 * events that mention it (`AuditReader.query({ hmac })`), without the value ever being logged.
 *
 * @since 0.1.0
 */
import * as Crypto from "node:crypto"
import { Effect, Redacted } from "effect"
import { AuditUnavailable } from "./AuditError.js"
import { AuditKeys } from "./AuditKeys.js"

/**
 * The HMAC (lowercase hex) of a value under the audit key: what `append` stores for
 * `sensitive: { name: value }`, and what to search for.
 *
 * @since 0.1.0
 * @category operations
 */
export const compute = (
  value: Redacted.Redacted<string> | string
): Effect.Effect<string, AuditUnavailable, AuditKeys> =>
  Effect.flatMap(AuditKeys, (keys) =>
    keys.hmac(new TextEncoder().encode(Redacted.isRedacted(value) ? Redacted.value(value) : value))
  ).pipe(
    Effect.map((mac) => Buffer.from(mac).toString("hex")),
    Effect.mapError(() => new AuditUnavailable({ message: "audit key is unavailable" }))
  )

/**
 * The same HMAC from raw key bytes, for tools that hold the key themselves.
 *
 * @since 0.1.0
 * @category operations
 */
export const computeWithKey = (key: Redacted.Redacted<Uint8Array>, value: string): string =>
  Crypto.createHmac("sha256", Redacted.value(key)).update(value, "utf8").digest("hex")
