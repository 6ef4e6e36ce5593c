const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

/** Fixed-width base62 of an unsigned big integer (left-padded with "0"). */
export const encode = (value: bigint, width: number): string => {
  let out = ""
  let v = value
  while (v > 0n) {
    out = ALPHABET[Number(v % 62n)] + out
    v /= 62n
  }
  return out.padStart(width, "0")
}

export const fromBytes = (bytes: Uint8Array, width: number): string => {
  let v = 0n
  for (const b of bytes) v = (v << 8n) | BigInt(b)
  return encode(v, width)
}

export const isBase62 = (s: string): boolean => /^[0-9A-Za-z]*$/.test(s)
