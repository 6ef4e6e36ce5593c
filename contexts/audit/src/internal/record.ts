import * as Crypto from "node:crypto"
import { Either, Schema } from "effect"
import { AuditEvent, type BreakReason, GENESIS_HASH } from "../AuditEvent.js"
import * as CanonicalJson from "../CanonicalJson.js"

export const sha256Hex = (text: string): string => Crypto.hash("sha256", text, "hex")

export type Unsealed = Omit<AuditEvent, "hash">

/**
 * The stored line of an event (ADR 0031): the `hash` member first, then the members of the
 * canonical JSON of the event without `hash`, in canonical order. It is ordinary JSON; the
 * hash input is `"{" + line.slice(75)`.
 */
/**
 * Canonical JSON of an unsealed event, written member by member in canonical (sorted) order;
 * equal to `CanonicalJson.stringifyUnsafe(event)` for every event the writer builds (a
 * property test holds the two together). `details` and `hmac` go through the generic encoder.
 */
export const bodyOf = (e: Unsealed): string => {
  const q = JSON.stringify
  let s = `{"action":${q(e.action)},"actor":{"id":${q(e.actor.id)},"type":${q(e.actor.type)}}`
  if (e.capability !== undefined) s += `,"capability":${q(e.capability)}`
  s += `,"details":${CanonicalJson.stringifyUnsafe(e.details)}`
  if (e.hmac !== undefined) s += `,"hmac":${CanonicalJson.stringifyUnsafe(e.hmac)}`
  s += `,"id":${q(e.id)},"outcome":${q(e.outcome)},"prevHash":${q(e.prevHash)}`
  if (e.reason !== undefined) s += `,"reason":${q(e.reason)}`
  s += `,"seq":${q(e.seq)}`
  if (e.session !== undefined) s += `,"session":${q(e.session)}`
  s += `,"stream":${q(e.stream)}`
  if (e.tier !== undefined) s += `,"tier":${q(e.tier)}`
  if (e.traceId !== undefined) s += `,"traceId":${q(e.traceId)}`
  s += `,"ts":${q(e.ts)}`
  if (e.wallet !== undefined) s += `,"wallet":${q(e.wallet)}`
  return s + "}"
}

export const seal = (event: Unsealed): { readonly event: AuditEvent; readonly line: string } => {
  const body = bodyOf(event)
  const hash = sha256Hex(body)
  return { event: { ...event, hash }, line: `{"hash":"${hash}",${body.slice(1)}` }
}

/** `seal` for an object the caller owns: adds `hash` to it instead of copying. */
export const sealInPlace = (event: Unsealed): { readonly event: AuditEvent; readonly line: string } => {
  const body = bodyOf(event)
  const hash = sha256Hex(body)
  return { event: Object.assign(event, { hash }), line: `{"hash":"${hash}",${body.slice(1)}` }
}

export const hashOf = (event: AuditEvent): string => {
  const { hash: _hash, ...rest } = event
  return sha256Hex(CanonicalJson.stringifyUnsafe(rest))
}

/** What the chain walk needs from one record. */
export interface Link {
  readonly seq: number
  readonly hash: string
  readonly prevHash: string
  readonly stream: string
}

const PREFIX = '{"hash":"'

const PREFIX_BYTES = Buffer.from(PREFIX, "latin1")
const PREV_HASH = Buffer.from('"prevHash":"', "latin1")
const SEQ = Buffer.from('"seq":', "latin1")
const STREAM = Buffer.from('"stream":"', "latin1")

/**
 * `fastLink` over the bytes `[start, end)` of a buffer of lines, hashing in place: the `,`
 * after the hash member is briefly replaced by `{` so the hash input is a view, not a copy.
 * `stream` is the expected stream id: a mismatch is reported as `stream: ""`.
 * `expectedPrevHash` is compared in place (the common case allocates nothing).
 */
export const fastLinkBytes = (
  buffer: Buffer,
  start: number,
  end: number,
  stream: Buffer,
  streamId: string,
  expectedPrevHash: string
): Link | undefined => {
  if (end - start < 120 || buffer[start + 73] !== 34 || buffer[start + 74] !== 44) return undefined
  for (let i = 0; i < 9; i++) if (buffer[start + i] !== PREFIX_BYTES[i]) return undefined
  buffer[start + 74] = 123
  const computed = Crypto.hash("sha256", buffer.subarray(start + 74, end), "hex")
  buffer[start + 74] = 44
  for (let i = 0; i < 64; i++) if (computed.charCodeAt(i) !== buffer[start + 9 + i]) return undefined
  // scanning back from the end: "stream":" then "seq": then "prevHash":" (canonical order)
  const st = lastIndexOfBytes(buffer, STREAM, end, start + 75)
  const s = lastIndexOfBytes(buffer, SEQ, st, start + 75)
  const p = lastIndexOfBytes(buffer, PREV_HASH, s, start + 75)
  if (p < 0 || s < 0 || st < 0) return undefined
  let seq = 0
  for (let i = s + 6; i < end; i++) {
    const c = buffer[i]!
    if (c < 48 || c > 57) break
    seq = seq * 10 + (c - 48)
  }
  let sameStream = st + 10 + stream.length <= end
  for (let i = 0; sameStream && i < stream.length; i++) sameStream = buffer[st + 10 + i] === stream[i]
  // prevHash: compared in place with the expected one; read out only when it differs
  let samePrev = true
  for (let i = 0; samePrev && i < 64; i++) samePrev = expectedPrevHash.charCodeAt(i) === buffer[p + 12 + i]
  const prevHash = samePrev ? expectedPrevHash : buffer.toString("latin1", p + 12, p + 76)
  return { seq, hash: computed, prevHash, stream: sameStream ? streamId : "" }
}

/** Last start of `needle` that begins before `before` and at or after `floor`, or -1. */
const lastIndexOfBytes = (buffer: Buffer, needle: Buffer, before: number, floor: number): number => {
  if (before < 0) return -1
  const first = needle[0]!
  const length = needle.length
  outer: for (let i = before - length; i >= floor; i--) {
    if (buffer[i] !== first) continue
    for (let j = 1; j < length; j++) if (buffer[i + j] !== needle[j]) continue outer
    return i
  }
  return -1
}

const decodeEvent = Schema.decodeUnknownEither(AuditEvent)

export type Parsed =
  | { readonly _tag: "Ok"; readonly event: AuditEvent }
  | { readonly _tag: "Bad"; readonly reason: BreakReason; readonly message: string }

/** Full path: parse, decode, and recompute the canonical hash. */
export const parseLine = (line: string): Parsed => {
  let json: unknown
  try {
    json = JSON.parse(line)
  } catch {
    return { _tag: "Bad", reason: "unparsable", message: "record is not JSON" }
  }
  const decoded = decodeEvent(json)
  if (Either.isLeft(decoded)) {
    return { _tag: "Bad", reason: "unparsable", message: "record is not an audit event" }
  }
  const event = decoded.right
  const computed = CanonicalJson.stringify(
    Object.fromEntries(Object.entries(json as Record<string, unknown>).filter(([k]) => k !== "hash"))
  )
  if (Either.isLeft(computed) || sha256Hex(computed.right) !== event.hash) {
    return { _tag: "Bad", reason: "hash-mismatch", message: "record content does not match its hash" }
  }
  return { _tag: "Ok", event }
}

/** Parse a line for reading (tail, query): decoded event, or undefined when unparsable. */
export const readLine = (line: string): AuditEvent | undefined => {
  let json: unknown
  try {
    json = JSON.parse(line)
  } catch {
    return undefined
  }
  const decoded = decodeEvent(json)
  return Either.isRight(decoded) ? decoded.right : undefined
}

export const GENESIS = GENESIS_HASH

export const padSeq = (seq: number): string => String(seq).padStart(16, "0")
