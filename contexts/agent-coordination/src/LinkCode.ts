/**
 * Single-use enrolment codes (ADR 0041). An operator mints one for an agent; the agent
 * redeems it once, within 10 minutes, for its token.
 *
 * Format: 16 Crockford base32 characters (80 random bits) in groups of four,
 * `ABCD-EFGH-JKMN-PQRS`. Input is normalised (case, dashes, spaces, `I/L→1`, `O→0`) so a
 * code read aloud or retyped still works. Stored only as the SHA-256 of the normalised code.
 *
 * @since 0.1.0
 */
import * as Crypto from "node:crypto"
import { Duration, Effect, Redacted } from "effect"

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
const LENGTH = 16

/** How long a link code can be redeemed. */
export const lifetime: Duration.Duration = Duration.minutes(10)

export const fromBytes = (random: Uint8Array): Redacted.Redacted<string> => {
  let v = 0n
  for (const b of random.subarray(0, 10)) v = (v << 8n) | BigInt(b)
  let out = ""
  for (let i = 0; i < LENGTH; i++) {
    out = ALPHABET[Number(v & 31n)] + out
    v >>= 5n
  }
  return Redacted.make(out.match(/.{4}/g)!.join("-"))
}

/** Mints a fresh code (80 random bits). */
export const mint: Effect.Effect<Redacted.Redacted<string>> = Effect.sync(() =>
  fromBytes(Crypto.randomBytes(10))
)

/** Canonical form: uppercase, no separators, ambiguous letters mapped. */
export const normalize = (code: Redacted.Redacted<string>): string =>
  Redacted.value(code).toUpperCase().replace(/[\s-]/g, "").replace(/[IL]/g, "1").replace(/O/g, "0")

/** SHA-256 of the normalised code: the stored form and the lookup key. */
export const hash = (code: Redacted.Redacted<string>): string =>
  Crypto.createHash("sha256")
    .update(`aap-link-code:${normalize(code)}`, "utf8")
    .digest("hex")

/** Whether the code has a plausible shape (checked before any lookup). */
export const isWellFormed = (code: Redacted.Redacted<string>): boolean => {
  const n = normalize(code)
  return n.length === LENGTH && [...n].every((c) => ALPHABET.includes(c))
}
