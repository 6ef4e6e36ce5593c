import { createCipheriv, createDecipheriv, type KeyObject, randomFillSync } from "node:crypto"

/** AES-256-GCM parameters used everywhere in key custody. */
export const KEY_BYTES = 32
export const NONCE_BYTES = 12
export const TAG_BYTES = 16

/**
 * AES-256-GCM encrypt; returns ciphertext || tag (tag = the last 16 bytes).
 */
export const gcmSeal = (
  key: Uint8Array | KeyObject,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array
): Buffer => {
  const cipher = createCipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_BYTES })
  cipher.setAAD(aad)
  const head = cipher.update(plaintext)
  const tail = cipher.final()
  const tag = cipher.getAuthTag()
  return Buffer.concat([head, tail, tag])
}

/**
 * AES-256-GCM decrypt of ciphertext || tag; `undefined` on any failure (wrong key, tag, nonce
 * length, AAD...). Callers turn `undefined` into `DecryptFailed` without saying why.
 */
export const gcmOpen = (
  key: Uint8Array | KeyObject,
  nonce: Uint8Array,
  sealed: Uint8Array,
  aad: Uint8Array
): Buffer | undefined => {
  const keyBytes = key instanceof Uint8Array ? key.length : key.symmetricKeySize
  if (keyBytes !== KEY_BYTES || nonce.length !== NONCE_BYTES || sealed.length < TAG_BYTES) return undefined
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_BYTES })
    decipher.setAAD(aad)
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES))
    const head = decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES))
    const tail = decipher.final()
    return tail.length === 0 ? head : Buffer.concat([head, tail])
  } catch {
    return undefined
  }
}

/**
 * CSPRNG bytes served from a 4 KiB buffer refilled with `randomFillSync`: one call into
 * OpenSSL per ~100 keys and nonces instead of one each (a `randomBytes` call costs about as
 * much as an AES-GCM setup). Bytes handed out are copied out and zeroed in the pool at once; no byte is ever handed out twice.
 */
const POOL_BYTES = 4096
let pool = Buffer.alloc(0)
let offset = 0
export const random = (n: number): Buffer => {
  if (n > POOL_BYTES) return randomFillSync(Buffer.alloc(n))
  if (offset + n > pool.length) {
    pool.fill(0)
    pool = randomFillSync(Buffer.allocUnsafeSlow(POOL_BYTES))
    offset = 0
  }
  // A slice of Node's shared allocation pool: cheap for the GC. Callers copy key bytes into
  // their own memory (`own`) before handing them out and zero these.
  const out = Buffer.allocUnsafe(n)
  pool.copy(out, 0, offset, offset + n)
  pool.fill(0, offset, offset + n)
  offset += n
  return out
}

export const freshNonce = (): Buffer => random(NONCE_BYTES)
export const freshKey = (): Buffer => random(KEY_BYTES)

export const utf8 = (s: string): Buffer => Buffer.from(s, "utf8")

/** Constant-time-ish equality for short public strings (key ids). */
export const sameString = (a: string, b: string): boolean => a === b
