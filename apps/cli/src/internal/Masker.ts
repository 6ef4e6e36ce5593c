/**
 * Streaming masking of secret values in a child's output (`aap exec`). Every complete
 * occurrence of a secret is replaced by `[masked]`, also when it arrives split across chunks:
 * the masker holds back the shortest tail that could still be the start of a secret (at most
 * the longest secret's length - 1 bytes) and releases it with the next chunk or at the end.
 */

export const MASK = Buffer.from("[masked]")

export class Masker {
  private readonly secrets: ReadonlyArray<Buffer>
  private readonly longest: number
  private pending: Buffer = Buffer.alloc(0)

  constructor(values: Iterable<string>) {
    const unique = [...new Set([...values].filter((v) => v.length > 0))]
    // Longest first: when two secrets start at the same byte, mask the longer one.
    this.secrets = unique.map((v) => Buffer.from(v, "utf8")).sort((a, b) => b.length - a.length)
    this.longest = this.secrets.reduce((n, s) => Math.max(n, s.length), 0)
  }

  /** Bytes safe to write now. */
  push(chunk: Buffer): Buffer {
    if (this.longest === 0) return chunk
    const buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk])
    const out: Array<Buffer> = []
    let from = 0
    for (;;) {
      let at = -1
      let match: Buffer | undefined
      for (const s of this.secrets) {
        const i = buf.indexOf(s, from)
        if (i >= 0 && (at < 0 || i < at)) {
          at = i
          match = s
        }
      }
      if (match === undefined) break
      out.push(buf.subarray(from, at), MASK)
      from = at + match.length
    }
    const hold = this.heldTail(buf, from)
    out.push(buf.subarray(from, buf.length - hold))
    this.pending = Buffer.from(buf.subarray(buf.length - hold))
    return Buffer.concat(out)
  }

  /** The rest, at the end of the stream (a partial secret is not a secret). */
  flush(): Buffer {
    const rest = this.pending
    this.pending = Buffer.alloc(0)
    return rest
  }

  /** Length of the longest suffix of `buf[from..]` that is a proper prefix of some secret. */
  private heldTail(buf: Buffer, from: number): number {
    const max = Math.min(this.longest - 1, buf.length - from)
    for (let k = max; k > 0; k--) {
      const tail = buf.subarray(buf.length - k)
      for (const s of this.secrets) {
        if (s.length > k && s.subarray(0, k).equals(tail)) return k
      }
    }
    return 0
  }
}
