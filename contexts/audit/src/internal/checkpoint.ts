import { Effect, Either, Schema } from "effect"
import { Checkpoint } from "../AuditEvent.js"
import { type AuditKeysError, type AuditKeysShape, type PublicKey, verifySignature } from "../AuditKeys.js"
import * as CanonicalJson from "../CanonicalJson.js"

const signedPayload = (c: {
  readonly stream: string
  readonly seq: number
  readonly hash: string
  readonly ts: string
  readonly final: boolean
}): Uint8Array =>
  new TextEncoder().encode(
    CanonicalJson.stringifyUnsafe({ final: c.final, hash: c.hash, seq: c.seq, stream: c.stream, ts: c.ts })
  )

export const sign = (
  keys: AuditKeysShape,
  head: {
    readonly stream: string
    readonly seq: number
    readonly hash: string
    readonly ts: string
    readonly final: boolean
  }
): Effect.Effect<Checkpoint, AuditKeysError> =>
  Effect.map(keys.sign(signedPayload(head)), ({ keyId, signature }) => ({
    stream: head.stream,
    seq: head.seq,
    hash: head.hash,
    ts: head.ts,
    final: head.final,
    keyId,
    signature: Buffer.from(signature).toString("base64url")
  }))

export const toLine = (checkpoint: Checkpoint): string => CanonicalJson.stringifyUnsafe(checkpoint)

const decode = Schema.decodeUnknownEither(Checkpoint)

export type CheckedCheckpoint =
  | { readonly _tag: "Valid"; readonly checkpoint: Checkpoint }
  | { readonly _tag: "Invalid"; readonly seq: number; readonly message: string }

export const check = (line: string, publicKeys: ReadonlyArray<PublicKey>): CheckedCheckpoint => {
  let json: unknown
  try {
    json = JSON.parse(line)
  } catch {
    return { _tag: "Invalid", seq: 0, message: "checkpoint is not JSON" }
  }
  const decoded = decode(json)
  if (Either.isLeft(decoded)) return { _tag: "Invalid", seq: 0, message: "checkpoint is malformed" }
  return checkDecoded(decoded.right, publicKeys)
}

export const checkDecoded = (
  checkpoint: Checkpoint,
  publicKeys: ReadonlyArray<PublicKey>
): CheckedCheckpoint => {
  const key = publicKeys.find((k) => k.keyId === checkpoint.keyId)
  if (key === undefined) {
    return {
      _tag: "Invalid",
      seq: checkpoint.seq,
      message: `checkpoint signed by unknown key ${checkpoint.keyId}`
    }
  }
  const ok = verifySignature(
    key.publicKey,
    signedPayload(checkpoint),
    Buffer.from(checkpoint.signature, "base64url")
  )
  return ok
    ? { _tag: "Valid", checkpoint }
    : { _tag: "Invalid", seq: checkpoint.seq, message: "checkpoint signature does not verify" }
}
