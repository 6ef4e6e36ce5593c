import { randomBytes } from "node:crypto"

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

/**
 * A monotonic ULID factory: ids made by one factory sort in creation order even within one
 * millisecond (the random part is incremented) and even if the clock steps back.
 */
export const makeUlidFactory = (): ((now: number) => string) => {
  let lastTime = -1
  const random = new Uint8Array(10)
  return (now: number): string => {
    if (now <= lastTime) {
      // increment the 80-bit random part; on overflow borrow the next millisecond
      let i = 9
      while (i >= 0) {
        const byte = random[i]!
        if (byte === 255) {
          random[i] = 0
          i--
        } else {
          random[i] = byte + 1
          break
        }
      }
      if (i < 0) lastTime++
    } else {
      lastTime = now
      random.set(randomBytes(10))
    }
    return encodeTime(lastTime) + encodeRandom(random)
  }
}

const encodeTime = (time: number): string => {
  let out = ""
  let t = time
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[t % 32]! + out
    t = Math.floor(t / 32)
  }
  return out
}

const encodeRandom = (bytes: Uint8Array): string => {
  // 80 bits -> 16 characters of 5 bits, big-endian
  let out = ""
  let buffer = 0
  let bits = 0
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte
    bits += 8
    while (bits >= 5) {
      out += ALPHABET[(buffer >> (bits - 5)) & 31]!
      bits -= 5
    }
    buffer &= (1 << bits) - 1
  }
  return out
}

/** The millisecond timestamp encoded in a ULID. */
export const ulidTime = (id: string): number => {
  let t = 0
  for (let i = 0; i < 10; i++) t = t * 32 + ALPHABET.indexOf(id[i]!)
  return t
}
