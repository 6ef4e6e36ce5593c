/**
 * Proxy tokens (ADR 0080): what an agent holds instead of a Class B key when the capability
 * has a `proxy` block.
 *
 * `aap_pxy_<24 base64url: 144-bit random nonce><32 base64url: MAC>` where
 * `MAC = HMAC-SHA256(K, "aap:v1:proxy-token:" + session + ":" + nonce)` truncated to 192 bits
 * and `K` is the installation's `proxy-token` system key (HKDF from the system root, the same
 * on every broker instance). Nothing is stored: a token is valid for exactly one session, and
 * only while that session is `active` and unexpired — the proxy reads the session on every
 * request. Revoking or expiring the session kills every token minted for it.
 *
 * @since 0.1.0
 */
import * as Crypto from "node:crypto"
import { Redacted } from "effect"
import { TOKEN_PREFIX } from "./ProxyPolicy.js"

/** `SystemKeys` purpose of the MAC key. */
export const PURPOSE = "proxy-token"

const NONCE_BYTES = 18
const NONCE_CHARS = 24
const MAC_BYTES = 24
const MAC_CHARS = 32
export const TOKEN_LENGTH = TOKEN_PREFIX.length + NONCE_CHARS + MAC_CHARS
const BASE64URL = /^[A-Za-z0-9_-]+$/

const mac = (key: Uint8Array, session: string, nonce: string): Buffer =>
  Crypto.createHmac("sha256", key)
    .update(`aap:v1:proxy-token:${session}:${nonce}`, "utf8")
    .digest()
    .subarray(0, MAC_BYTES)

/** A new token for a session (random nonce, MAC under `key`). */
export const mint = (key: Uint8Array, session: string): Redacted.Redacted<string> => {
  const nonce = Crypto.randomBytes(NONCE_BYTES).toString("base64url")
  return Redacted.make(`${TOKEN_PREFIX}${nonce}${mac(key, session, nonce).toString("base64url")}`)
}

/** Whether `token` was minted under `key` for `session`. Constant time in the MAC comparison. */
export const verify = (key: Uint8Array, session: string, token: string): boolean => {
  if (token.length !== TOKEN_LENGTH || !token.startsWith(TOKEN_PREFIX)) return false
  const body = token.slice(TOKEN_PREFIX.length)
  if (!BASE64URL.test(body)) return false
  const nonce = body.slice(0, NONCE_CHARS)
  const presented = Buffer.from(body.slice(NONCE_CHARS), "base64url")
  if (presented.length !== MAC_BYTES) return false
  return Crypto.timingSafeEqual(presented, mac(key, session, nonce))
}

/** The SHA-256 of a token, hex: what an in-memory index of tokens holds instead of the token. */
export const digest = (token: string): string =>
  Crypto.createHash("sha256").update(token, "utf8").digest("hex")

/** The fingerprint of a token whose `digest` is `hex`. */
export const fingerprintOfDigest = (hex: string): string => hex.slice(0, 12)

/** A short, non-secret identifier of a token for logs (SHA-256 prefix). */
export const fingerprint = (token: string): string => fingerprintOfDigest(digest(token))
