/**
 * `verify`'s fast path (ADR 0034): accept a stored line only if it is, byte for byte, the
 * line the writer produces for a valid event (ADR 0031: the `hash` member, then the
 * canonical members of the event without `hash`, ADR 0030) with the expected `seq`,
 * `prevHash` and `stream`, and its body hashes to its `hash`.
 *
 * The scan is a recogniser for exactly that grammar: members in canonical order, each at
 * most once, no whitespace, strings escaped as `JSON.stringify` escapes them, integers and
 * numbers in their shortest round-trip form, `details`/`hmac` keys strictly increasing, and
 * every field in its schema's domain. Because the grammar admits one text per event, the
 * values read here are the values `JSON.parse` reads and the bytes hashed are the canonical
 * bytes. Anything it does not recognise (including rarer canonical forms it does not try to:
 * `\u` escapes, keys with escapes or non-ASCII characters, another stream, an unexpected seq
 * or prevHash) returns -1 and the caller decodes the line in full (`record.parseStored`),
 * which is the definition. The fast path never accepts a line the full path rejects (a
 * property test holds them together).
 */
import { isUtf8 } from "node:buffer"
import { hash } from "node:crypto"

// Bytes are written as numbers in the scanning code (a module constant costs a context load
// and, for `const`, a hole check on every use in a loop): 34 `"`, 92 `\`, 44 `,`, 58 `:`,
// 123 `{`, 125 `}`, 10 newline, 32 space.

/**
 * A literal byte string of 4 to 16 bytes, compared as two words: for 8 bytes or more, two
 * 64-bit words at 0 and `length - 8` (as doubles: printable ASCII bytes never form a NaN,
 * zero or negative double, and other doubles are equal only when their bits are), else two
 * 32-bit words at 0 and `length - 4`. The words may overlap.
 */
interface Literal {
  readonly length: number
  readonly wide: boolean
  readonly first: number
  readonly last: number
}

const literalOf = (text: string): Literal => {
  const b = Buffer.from(text, "latin1")
  if (b.length < 4 || b.length > 16) throw new Error("literals are 4 to 16 bytes")
  for (const c of b) if (c < 0x20 || c > 0x7e) throw new Error("literals are printable ASCII")
  const wide = b.length >= 8
  return wide
    ? { length: b.length, wide, first: b.readDoubleLE(0), last: b.readDoubleLE(b.length - 8) }
    : { length: b.length, wide, first: b.readInt32LE(0), last: b.readInt32LE(b.length - 4) }
}

const HASH_KEY = literalOf('{"hash":"')
const ACTION_KEY = literalOf('"action":"')
const ACTOR_KEY = literalOf(',"actor":{"id":')
const TYPE_KEY = literalOf(',"type":"')
const CAPABILITY_KEY = literalOf(',"capability":')
const DETAILS_KEY = literalOf(',"details":{')
const HMAC_KEY = literalOf(',"hmac":{')
const ID_KEY = literalOf(',"id":"')
const OUTCOME_KEY = literalOf(',"outcome":"')
const PREV_HASH_KEY = literalOf(',"prevHash":"')
const REASON_KEY = literalOf(',"reason":')
const SEQ_KEY = literalOf(',"seq":')
const SESSION_KEY = literalOf(',"session":')
const STREAM_KEY = literalOf(',"stream":')
const TIER_KEY = literalOf(',"tier":"')
const TRACE_ID_KEY = literalOf(',"traceId":')
const TS_KEY = literalOf(',"ts":"')
const WALLET_KEY = literalOf(',"wallet":')

const words = (...list: Array<string>) => list.map((w) => literalOf(`${w}"`))
const ACTOR_TYPES = words("agent", "operator", "system", "anonymous")
const OUTCOMES = words("success", "denied", "error")
const TIERS = words("low", "medium", "high", "critical")
const TRUE = literalOf("true")
const FALSE = literalOf("false")
const NULL = literalOf("null")

/** 1 for the characters after `\` in a canonical short escape (`JSON.stringify`'s). */
const SHORT_ESCAPE = new Uint8Array(256)
for (const c of '"\\bfnrt') SHORT_ESCAPE[c.charCodeAt(0)] = 1
/** 1 for lowercase hex digits. */
const HEX = new Uint8Array(256)
for (const c of "0123456789abcdef") HEX[c.charCodeAt(0)] = 1
/** A byte's two lowercase hex digits as a little-endian 16-bit word. */
const HEX_OF = new Int32Array(256)
for (let v = 0; v < 256; v++) {
  const hex = v.toString(16).padStart(2, "0")
  HEX_OF[v] = hex.charCodeAt(0) | (hex.charCodeAt(1) << 8)
}

const EMPTY = Buffer.alloc(0)
const EMPTY_VIEW = new DataView(new ArrayBuffer(0))

const STREAM_ID = /^[a-z0-9][a-z0-9-]{0,63}-[0-9A-HJKMNP-TV-Z]{26}$/

/** Set by `string` when a string holds a byte >= 0x80 (the line is then checked as UTF-8). */
let nonAscii = false

/** `lit` at `i`: the index after it, or -1. */
function literal(b: Uint8Array, d: DataView, i: number, lit: Literal): number {
  const n = lit.length
  if (i < 0 || i + n > b.length) return -1
  if (lit.wide) {
    if (d.getFloat64(i, true) !== lit.first || d.getFloat64(i + n - 8, true) !== lit.last) return -1
  } else if (d.getInt32(i, true) !== lit.first || d.getInt32(i + n - 4, true) !== lit.last) return -1
  return i + n
}

/** The bytes of `text` (a stream id in quotes) at `i`: the index after them, or -1. */
function bytesAt(b: Uint8Array, d: DataView, i: number, text: Int32Array, length: number): number {
  if (i < 0 || i + length > b.length) return -1
  const last = text.length - 1
  for (let k = 0; k < last; k++) if (d.getInt32(i + 4 * k, true) !== text[k]) return -1
  return d.getInt32(i + length - 4, true) === text[last] ? i + length : -1
}

/** One of `choices` at `i` (each ends with its closing quote): the index after it, or -1. */
function oneOf(b: Uint8Array, d: DataView, i: number, choices: ReadonlyArray<Literal>): number {
  for (let k = 0; k < choices.length; k++) {
    const j = literal(b, d, i, choices[k]!)
    if (j >= 0) return j
  }
  return -1
}

/**
 * Whether none of the four bytes of `w` is a control character, `"`, `\` or >= 0x80 (SWAR:
 * a lane's high bit is set by `w` itself when it is >= 0x80; otherwise every lane is ASCII
 * and subtracting sets the high bit of the first lane below 0x20, equal to `"` or to `\`
 * (later lanes may see its borrow, which changes no answer)).
 */
function plain(w: number): boolean {
  return (
    (((w - 0x20202020) | ((w ^ 0x22222222) - 0x01010101) | ((w ^ 0x5c5c5c5c) - 0x01010101) | w) &
      0x80808080) ===
    0
  )
}

/**
 * A canonical JSON string at `i` (opening quote): the index after its closing quote, or -1.
 * Raw bytes >= 0x20 except `"` and `\`; escapes only `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`
 * (a `\u` escape is canonical for other control characters and lone surrogates, but rare:
 * the full path handles it). Bytes >= 0x80 set `nonAscii` (UTF-8 is checked per line).
 */
function string(b: Uint8Array, d: DataView, i: number): number {
  if (i < 0 || b[i] !== 34) return -1
  i++
  const limit = b.length - 4
  for (;;) {
    while (i <= limit && plain(d.getInt32(i, true))) i += 4
    const c = b[i]!
    if (c > 34 && c < 128 && c !== 92) i++
    else if (c === 34) return i + 1
    else if (c === 32 || c === 33) i++
    else if (c === 92) {
      if (SHORT_ESCAPE[b[i + 1]!] !== 1) return -1
      i += 2
    } else if (c >= 128) {
      nonAscii = true
      i++
    } else return -1 // a control character, or the end of the buffer (undefined)
  }
}

/**
 * A plain key at `i` (opening quote; ASCII from 0x20, no `"`, no `\`: no escapes, so byte
 * order is UTF-16 code unit order): the index of its closing quote, or -1.
 */
function plainKey(b: Uint8Array, i: number): number {
  if (b[i] !== 34) return -1
  for (;;) {
    const c = b[++i]!
    if (!((c > 34 && c < 128 && c !== 92) || c === 32 || c === 33)) return c === 34 ? i : -1
  }
}

/** Whether the key `[a, aEnd)` sorts strictly after `[p, pEnd)` (bytes, i.e. code units). */
function after(b: Uint8Array, a: number, aEnd: number, p: number, pEnd: number): boolean {
  const n = Math.min(aEnd - a, pEnd - p)
  for (let k = 0; k < n; k++) {
    const x = b[a + k]!
    const y = b[p + k]!
    if (x !== y) return x > y
  }
  return aEnd - a > pEnd - p
}

function isDigit(c: number | undefined): boolean {
  return c !== undefined && c >= 48 && c <= 57
}

/** A finite number in its `JSON.stringify` form at `i`: the index after it, or -1. */
function number(b: Uint8Array, i: number): number {
  let j = i
  const negative = b[j] === 45
  if (negative) j++
  const first = b[j]
  if (first === 48) j++
  else if (first !== undefined && first >= 49 && first <= 57) {
    j++
    while (isDigit(b[j])) j++
  } else return -1
  let c = b[j]
  if (c !== 46 && c !== 101 && c !== 69) {
    // an integer: canonical when it is not -0 and exactly representable (at most 15 digits)
    const digits = j - i - (negative ? 1 : 0)
    if (digits <= 15 && !(negative && first === 48)) return j
  } else {
    if (c === 46) {
      j++
      if (!isDigit(b[j])) return -1
      while (isDigit(b[j])) j++
      c = b[j]
    }
    if (c === 101 || c === 69) {
      j++
      if (b[j] === 43 || b[j] === 45) j++
      if (!isDigit(b[j])) return -1
      while (isDigit(b[j])) j++
    }
  }
  // the general case: the text must be what JSON.stringify writes for the value it denotes
  const text = Buffer.from(b.buffer, b.byteOffset + i, j - i).toString("latin1")
  return String(Number(text)) === text ? j : -1
}

/** `"` + 64 lowercase hex digits + `"` at `i`: the index after it, or -1. */
function hexValue(b: Uint8Array, i: number): number {
  if (b[i] !== 34) return -1
  const hex = HEX
  for (let k = 1; k < 65; k++) if (hex[b[i + k]!] !== 1) return -1
  return b[i + 65] === 34 ? i + 66 : -1
}

/**
 * The members of a record after its `{` at `i`, keys strictly increasing: `details` values
 * (string, finite number, boolean, null) or, with `hex`, `hmac` values (64 lowercase hex
 * digits). The index after its `}`, or -1.
 */
function record(b: Uint8Array, d: DataView, i: number, hex: boolean): number {
  if (i < 0) return -1
  if (b[i] === 125) return i + 1
  let previous = -1
  let previousEnd = -1
  for (;;) {
    const end = plainKey(b, i)
    if (end < 0) return -1
    if (previous >= 0 && !after(b, i + 1, end, previous, previousEnd)) return -1
    previous = i + 1
    previousEnd = end
    if (b[end + 1] !== 58) return -1
    i = end + 2
    const c = b[i]
    if (hex) i = hexValue(b, i)
    else if (c === 34) i = string(b, d, i)
    else if (c === 116) i = literal(b, d, i, TRUE)
    else if (c === 102) i = literal(b, d, i, FALSE)
    else if (c === 110) i = literal(b, d, i, NULL)
    else i = number(b, i)
    if (i < 0) return -1
    const next = b[i]
    if (next === 125) return i + 1
    if (next !== 44) return -1
    i++
  }
}

function isLower(c: number | undefined): boolean {
  return c !== undefined && c >= 97 && c <= 122
}

/** An action (`^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+$`) and its closing quote at `i`. */
function action(b: Uint8Array, i: number): number {
  if (i < 0 || !isLower(b[i])) return -1
  i++
  let dots = 0
  for (;;) {
    const c = b[i]
    if (isLower(c) || isDigit(c) || c === 45) i++
    else if (c === 46 && isLower(b[i + 1])) {
      dots++
      i += 2
    } else return dots > 0 && c === 34 ? i + 1 : -1
  }
}

/**
 * The timestamp pattern as six words: for each, the mask of its digit lanes and the value of
 * its other lanes (`-`, `T`, `:`, `.`, `Z`).
 */
const TS_TEMPLATE = Buffer.from("0000-00-00T00:00:00.000Z", "latin1")
const TS_DIGITS = Int32Array.from({ length: 6 }, (_, k) => {
  let mask = 0
  for (let lane = 0; lane < 4; lane++) if (TS_TEMPLATE[4 * k + lane] === 48) mask |= 0xff << (8 * lane)
  return mask
})
const TS_FIXED = Int32Array.from({ length: 6 }, (_, k) => TS_TEMPLATE.readInt32LE(4 * k) & ~TS_DIGITS[k]!)

/** `YYYY-MM-DDTHH:MM:SS.mmmZ"` at `i` (the schema's pattern): the index after it, or -1. */
function timestamp(b: Uint8Array, d: DataView, i: number): number {
  if (i < 0 || i + 25 > b.length) return -1
  const digits = TS_DIGITS
  const fixed = TS_FIXED
  for (let k = 0; k < 6; k++) {
    const w = d.getInt32(i + 4 * k, true)
    const m = digits[k]!
    if ((w & ~m) !== fixed[k]) return -1
    // digit lanes: high nibble 3, and low nibble + 6 does not carry (the low nibble is <= 9)
    const x = w & m
    const threes = 0x30303030 & m
    if ((x & 0xf0f0f0f0) !== threes || ((x + (0x06060606 & m)) & 0xf0f0f0f0) !== threes) return -1
  }
  return b[i + 24] === 34 ? i + 25 : -1
}

/**
 * 1 at `c0 | c1 << 8` when both bytes are ULID characters: Crockford base32, `0-9A-Z` without
 * `I`, `L`, `O`, `U` (a table over byte pairs: half the lookups of a byte table).
 */
const ULID_PAIR = new Uint8Array(65536)
for (const x of "0123456789ABCDEFGHJKMNPQRSTVWXYZ")
  for (const y of "0123456789ABCDEFGHJKMNPQRSTVWXYZ") ULID_PAIR[x.charCodeAt(0) | (y.charCodeAt(0) << 8)] = 1

/** A ULID and its closing quote at `i`: the index after it, or -1. */
function ulid(b: Uint8Array, d: DataView, i: number): number {
  if (i < 0 || i + 27 > b.length) return -1
  const pairs = ULID_PAIR
  for (let k = 0; k < 26; k += 2) if (pairs[d.getUint16(i + k, true)] !== 1) return -1
  return b[i + 26] === 34 ? i + 27 : -1
}

/** The seq member's value at `i`: `expected` in canonical form, then the index after it. */
function seqValue(b: Uint8Array, i: number, expected: number): number {
  if (i < 0) return -1
  let c = b[i]
  if (c === undefined || c < 49 || c > 57) return -1
  let n = 0
  let digits = 0
  while (c !== undefined && c >= 48 && c <= 57) {
    n = n * 10 + (c - 48)
    digits++
    c = b[++i]
  }
  return digits <= 15 && n === expected ? i : -1
}

/** The line up to the end of `actor`: `{"hash":"<64>","action":..,"actor":{..}`. */
function eventHead(b: Uint8Array, d: DataView, start: number): number {
  if (literal(b, d, start, HASH_KEY) < 0 || b[start + 73] !== 34 || b[start + 74] !== 44) return -1
  let i = action(b, literal(b, d, start + 75, ACTION_KEY))
  i = string(b, d, literal(b, d, i, ACTOR_KEY))
  i = oneOf(b, d, literal(b, d, i, TYPE_KEY), ACTOR_TYPES)
  return i >= 0 && b[i] === 125 ? i + 1 : -1
}

/** `capability`, `details`, `hmac`. */
function eventDetails(b: Uint8Array, d: DataView, i: number): number {
  const j = literal(b, d, i, CAPABILITY_KEY)
  if (j >= 0) i = string(b, d, j)
  i = record(b, d, literal(b, d, i, DETAILS_KEY), false)
  const k = literal(b, d, i, HMAC_KEY)
  return k >= 0 ? record(b, d, k, true) : i
}

/** `id`, `outcome`, and `prevHash` (equal to `prev`, 16 little-endian words of hex). */
function eventLink(b: Uint8Array, d: DataView, i: number, prev: Int32Array): number {
  i = ulid(b, d, literal(b, d, i, ID_KEY))
  i = oneOf(b, d, literal(b, d, i, OUTCOME_KEY), OUTCOMES)
  i = literal(b, d, i, PREV_HASH_KEY)
  if (i < 0 || i + 65 > b.length) return -1
  for (let k = 0; k < 16; k++) if (d.getInt32(i + 4 * k, true) !== prev[k]) return -1
  return b[i + 64] === 34 ? i + 65 : -1
}

/** `reason`, `seq` (equal to `seq`), `session`, `stream` (these bytes). */
function eventPosition(
  b: Uint8Array,
  d: DataView,
  i: number,
  seq: number,
  stream: Int32Array,
  streamLength: number
): number {
  let j = literal(b, d, i, REASON_KEY)
  if (j >= 0) i = string(b, d, j)
  i = seqValue(b, literal(b, d, i, SEQ_KEY), seq)
  j = literal(b, d, i, SESSION_KEY)
  if (j >= 0) i = string(b, d, j)
  return bytesAt(b, d, literal(b, d, i, STREAM_KEY), stream, streamLength)
}

/** `tier`, `traceId`, `ts`, `wallet`, `}`: the index of the newline after it, or -1. */
function eventEnd(b: Uint8Array, d: DataView, i: number): number {
  let j = literal(b, d, i, TIER_KEY)
  if (j >= 0) i = oneOf(b, d, j, TIERS)
  j = literal(b, d, i, TRACE_ID_KEY)
  if (j >= 0) i = string(b, d, j)
  i = timestamp(b, d, literal(b, d, i, TS_KEY))
  j = literal(b, d, i, WALLET_KEY)
  if (j >= 0) i = string(b, d, j)
  return i >= 0 && b[i] === 125 && b[i + 1] === 10 ? i + 1 : -1
}

/**
 * Recognises the next record of one stream, chunk by chunk (`chunk`, then `accept` for each
 * line). Holds the chain's head: `prevHash` is the hash of the last record accepted (or set
 * with `setPrevHash` for a record accepted by the full path).
 */
export class NextRecord {
  /**
   * `"<stream>"` as little-endian words at 0, 4, ... and length - 4, or undefined when the
   * stream id is not one (the fast path is off).
   */
  private readonly stream: Int32Array | undefined
  private readonly streamLength: number
  /** The expected `prevHash` as 16 little-endian words of its hex text. */
  private prev = new Int32Array(16)
  /** Where the next accepted record's hash is written; then it becomes `prev` (a swap). */
  private hex = new Int32Array(16)
  private prevText: string | undefined = undefined
  /** Where the hash of the last accepted record is, in the current chunk (its text is read lazily). */
  private prevAt = -1
  private buffer: Buffer = EMPTY
  private view: DataView = EMPTY_VIEW
  private arrayBuffer: ArrayBufferLike = EMPTY.buffer
  private byteOffset = 0

  constructor(stream: string, prevHash: string) {
    const quoted = Buffer.from(`"${stream}"`, "latin1")
    const offsets: Array<number> = []
    for (let o = 0; o + 4 < quoted.length; o += 4) offsets.push(o)
    offsets.push(quoted.length - 4)
    this.stream = STREAM_ID.test(stream) ? Int32Array.from(offsets, (o) => quoted.readInt32LE(o)) : undefined
    this.streamLength = quoted.length
    this.setPrevHash(prevHash)
  }

  /** The `prevHash` the next record must have (the last accepted record's hash). */
  prevHash(): string {
    if (this.prevText === undefined)
      this.prevText = this.buffer.toString("latin1", this.prevAt, this.prevAt + 64)
    return this.prevText
  }

  setPrevHash(hash: string): void {
    this.prevText = hash
    this.prevAt = -1
    const b = Buffer.from(hash.padEnd(64, " ").slice(0, 64), "latin1")
    for (let k = 0; k < 16; k++) this.prev[k] = b.readInt32LE(4 * k)
  }

  /**
   * The next lines come from `buffer` (which `accept` modifies during a call and restores).
   * Call `endChunk` before the buffer is reused.
   */
  chunk(buffer: Buffer): void {
    this.prevHash()
    this.buffer = buffer
    this.view = new DataView(buffer.buffer, buffer.byteOffset, buffer.length)
    this.arrayBuffer = buffer.buffer
    this.byteOffset = buffer.byteOffset
    this.prevAt = -1
  }

  /** After `run`: the index after the last line it accepted. */
  position = 0

  /**
   * `accept` the records from `start` on, the first with seq `seq`, while they pass, up to
   * and including seq `last`: the number accepted (then `position` is where the next
   * line starts).
   */
  run(start: number, seq: number, last: number): number {
    const size = this.buffer.length
    let n = 0
    while (start < size && seq + n <= last) {
      const end = this.accept(start, seq + n)
      if (end < 0) break
      n++
      start = end + 1
    }
    this.position = start
    return n
  }

  /** Done with the current chunk: keeps what is still needed from it (the head's hash). */
  endChunk(): void {
    this.prevHash()
    this.buffer = EMPTY
    this.view = EMPTY_VIEW
  }

  /**
   * If the line at `start` of the current chunk is the canonical line of a valid event with
   * this `seq`, the expected `prevHash` and this stream, whose body hashes to its `hash`,
   * followed by a newline: the index of that newline (and the record becomes the head).
   * Otherwise -1, and nothing changes.
   */
  accept(start: number, seq: number): number {
    const stream = this.stream
    if (stream === undefined) return -1
    const b = this.buffer
    const d = this.view
    nonAscii = false
    // in parts, each small enough for the compiler to inline its helpers
    let i = eventHead(b, d, start)
    i = eventDetails(b, d, i)
    i = eventLink(b, d, i, this.prev)
    i = eventPosition(b, d, i, seq, stream, this.streamLength)
    const end = eventEnd(b, d, i)
    if (end < 0) return -1
    const body = new Uint8Array(this.arrayBuffer, this.byteOffset + start + 74, end - start - 74)
    if (nonAscii && !isUtf8(body)) return -1
    b[start + 74] = 123
    const digest = hash("sha256", body, "binary")
    b[start + 74] = 44
    // the digest (one byte per character) as hex words, against the stored hash
    const hex = this.hex
    const hexOf = HEX_OF
    for (let k = 0; k < 16; k++) {
      const w = hexOf[digest.charCodeAt(2 * k)]! | (hexOf[digest.charCodeAt(2 * k + 1)]! << 16)
      if (d.getInt32(start + 9 + 4 * k, true) !== w) return -1
      hex[k] = w
    }
    this.hex = this.prev
    this.prev = hex
    this.prevAt = start + 9
    this.prevText = undefined
    return end
  }
}
