import { isUtf8 } from "node:buffer"
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

const decodeEvent = Schema.decodeUnknownEither(AuditEvent)
const decodeStrict = Schema.decodeUnknownEither(AuditEvent, { onExcessProperty: "error" })

export type Parsed =
  | { readonly _tag: "Ok"; readonly event: AuditEvent }
  | { readonly _tag: "Bad"; readonly reason: BreakReason; readonly message: string }

/**
 * The definition of a valid stored record (ADR 0031, ADR 0034), for `verify`: the bytes are
 * UTF-8 and JSON; the value is an audit event with no other members; the canonical JSON of
 * the event without `hash` hashes to `hash`; and the line is exactly the stored form of that
 * canonical JSON (`{"hash":"<hash>",` then its members) — no whitespace, reordering,
 * duplicate member or other encoding of the same content.
 */
export const parseStored = (bytes: Uint8Array): Parsed => {
  if (!isUtf8(bytes)) return { _tag: "Bad", reason: "unparsable", message: "record is not UTF-8" }
  const line = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("utf8")
  let json: unknown
  try {
    json = JSON.parse(line)
  } catch {
    return { _tag: "Bad", reason: "unparsable", message: "record is not JSON" }
  }
  const decoded = decodeStrict(json)
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
  if (line !== `{"hash":"${event.hash}",${computed.right.slice(1)}`) {
    return {
      _tag: "Bad",
      reason: "hash-mismatch",
      message: "record is not in canonical form: its bytes are not the bytes its hash covers"
    }
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
