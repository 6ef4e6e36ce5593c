/**
 * Bearer tokens for agents and operators (ADR 0041).
 *
 * Format: `aap_agt_<43 base62: 256 random bits><6 base62: CRC32 checksum>` for agents,
 * `aap_op_…` for operators. The prefix makes leaked tokens recognisable to secret scanners;
 * the checksum lets the broker reject typos and garbage without a store lookup. Tokens are
 * shown once and stored only as their SHA-256 (`hash`), which is also the lookup key.
 *
 * @since 0.1.0
 */
import * as Crypto from "node:crypto"
import * as Zlib from "node:zlib"
import { Effect, Option, Redacted } from "effect"
import * as Base62 from "./internal/base62.js"
import type { PrincipalType } from "./Principal.js"

export const prefixes: Readonly<Record<PrincipalType, string>> = {
  agent: "aap_agt_",
  operator: "aap_op_"
}

const BODY = 43
const CHECK = 6

const checksum = (s: string): string => Base62.encode(BigInt(Zlib.crc32(s)), CHECK)

/** A freshly minted token: the plaintext (shown once) and what is stored. */
export interface Minted {
  readonly token: Redacted.Redacted<string>
  readonly hash: string
  readonly fingerprint: string
}

/** SHA-256 of the token, lowercase hex: the stored form and the lookup key. */
export const hash = (token: Redacted.Redacted<string>): string =>
  Crypto.createHash("sha256").update(Redacted.value(token), "utf8").digest("hex")

/** A short, non-secret identifier of a token (first 12 hex chars of its hash). */
export const fingerprintOf = (tokenHash: string): string => tokenHash.slice(0, 12)

/** Builds a token from given random bytes (exported for tests and vectors). */
export const fromBytes = (type: PrincipalType, random: Uint8Array): Redacted.Redacted<string> => {
  const head = prefixes[type] + Base62.fromBytes(random, BODY)
  return Redacted.make(head + checksum(head))
}

/** Mints a new 256-bit token for a principal type. */
export const mint = (type: PrincipalType): Effect.Effect<Minted> =>
  Effect.sync(() => {
    const token = fromBytes(type, Crypto.randomBytes(32))
    const h = hash(token)
    return { token, hash: h, fingerprint: fingerprintOf(h) }
  })

/**
 * Checks the shape and checksum of a presented token and tells which principal type it
 * claims to be. `None` for anything malformed; never echoes the value.
 */
export const parse = (token: Redacted.Redacted<string>): Option.Option<PrincipalType> => {
  const raw = Redacted.value(token)
  for (const type of ["agent", "operator"] as const) {
    const prefix = prefixes[type]
    if (!raw.startsWith(prefix)) continue
    const rest = raw.slice(prefix.length)
    if (rest.length !== BODY + CHECK || !Base62.isBase62(rest)) return Option.none()
    const head = prefix + rest.slice(0, BODY)
    return checksum(head) === rest.slice(BODY) ? Option.some(type) : Option.none()
  }
  return Option.none()
}
