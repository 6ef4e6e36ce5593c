import { createCipheriv, createDecipheriv, type KeyObject, randomFillSync } from "node:crypto"

/** AES-256-GCM parameters used everywhere in key custody. */
export const KEY_BYTES = 32
export const NONCE_BYTES = 12
export const TAG_BYTES = 16

/**
 * AES-256-GCM encrypt into `out` at `at`: the ciphertext, then the 16-byte tag. `out` must
 * have `plaintext.length + TAG_BYTES` bytes free at `at`. Returns the offset after the tag.
 */
export const gcmSealInto = (
  key: Uint8Array | KeyObject,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
  out: Uint8Array,
  at: number
): number => {
  const cipher = createCipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_BYTES })
  cipher.setAAD(aad)
  const head = cipher.update(plaintext)
  const tail = cipher.final()
  // GCM is a stream mode: the output is exactly as long as the input (`tail` is empty).
  if (head.length + tail.length !== plaintext.length) throw new Error("AES-GCM output length mismatch")
  out.set(head, at)
  if (tail.length > 0) out.set(tail, at + head.length)
  out.set(cipher.getAuthTag(), at + plaintext.length)
  return at + plaintext.length + TAG_BYTES
}

/**
 * AES-256-GCM encrypt; returns ciphertext || tag (tag = the last 16 bytes) in memory of its own
 * (never a slice of Node's shared allocation pool).
 */
export const gcmSeal = (
  key: Uint8Array | KeyObject,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array
): Uint8Array => {
  const out = new Uint8Array(plaintext.length + TAG_BYTES)
  gcmSealInto(key, nonce, plaintext, aad, out, 0)
  return out
}

/**
 * AES-256-GCM decrypt of ciphertext || tag; `undefined` on any failure (wrong key, tag, nonce
 * length, AAD...). Callers turn `undefined` into `DecryptFailed` without saying why.
 *
 * The plaintext is in memory of its own (node:crypto's output buffer, which shares its
 * ArrayBuffer with nothing; copied if it ever did), so callers may hand it out without
 * another copy. Bytes decrypted before a failed tag check are zeroed.
 */
export const gcmOpen = (
  key: Uint8Array | KeyObject,
  nonce: Uint8Array,
  sealed: Uint8Array,
  aad: Uint8Array
): Buffer | undefined => {
  const keyBytes = key instanceof Uint8Array ? key.length : key.symmetricKeySize
  if (keyBytes !== KEY_BYTES || nonce.length !== NONCE_BYTES || sealed.length < TAG_BYTES) return undefined
  let head: Buffer | undefined
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_BYTES })
    decipher.setAAD(aad)
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES))
    head = decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES))
    const tail = decipher.final()
    if (tail.length === 0 && head.byteOffset === 0 && head.buffer.byteLength === head.length) return head
    const plain = Buffer.allocUnsafeSlow(head.length + tail.length)
    head.copy(plain, 0)
    tail.copy(plain, head.length)
    head.fill(0)
    return plain
  } catch {
    head?.fill(0)
    return undefined
  }
}

/**
 * CSPRNG bytes served from a 4 KiB buffer refilled with `randomFillSync`: one call into
 * OpenSSL per ~100 keys and nonces instead of one each (a `randomBytes` call costs about as
 * much as an AES-GCM setup). Bytes handed out are copied out and zeroed in the pool at once;
 * no byte is ever handed out twice.
 */
const POOL_BYTES = 4096
let pool = Buffer.alloc(0)
let offset = 0

/** Fill `out[at, at + n)` with fresh random bytes. */
export const fillRandom = (out: Uint8Array, at = 0, n = out.length - at): void => {
  if (n > POOL_BYTES) {
    randomFillSync(out, at, n)
    return
  }
  if (offset + n > pool.length) {
    pool.fill(0)
    pool = randomFillSync(Buffer.allocUnsafeSlow(POOL_BYTES))
    offset = 0
  }
  pool.copy(out, at, offset, offset + n)
  pool.fill(0, offset, offset + n)
  offset += n
}

/** `n` fresh random bytes in memory of their own (never a slice of Node's shared pool). */
export const random = (n: number): Uint8Array => {
  const out = new Uint8Array(n)
  fillRandom(out, 0, n)
  return out
}

export const freshNonce = (): Uint8Array => random(NONCE_BYTES)
export const freshKey = (): Uint8Array => random(KEY_BYTES)

export const utf8 = (s: string): Buffer => Buffer.from(s, "utf8")

/** Constant-time-ish equality for short public strings (key ids). */
export const sameString = (a: string, b: string): boolean => a === b
