/**
 * The audit event (DESIGN §8): what callers pass in (`AuditInput`) and what the log stores
 * (`AuditEvent`), plus checkpoints and the verify report. Schema-only: no infrastructure, so
 * `Api.ts` and clients can import it.
 *
 * @since 0.1.0
 */
import type { Redacted } from "effect"
import { Schema } from "effect"

/**
 * `prevHash` of the first event of every stream.
 *
 * @since 0.1.0
 * @category constants
 */
export const GENESIS_HASH = "0".repeat(64)

/**
 * A ULID: 26 Crockford base32 characters, time-ordered.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Ulid = Schema.String.pipe(Schema.pattern(/^[0-9A-HJKMNP-TV-Z]{26}$/))

/**
 * A stream id: `<instance>-<ULID of the writer's start>`. The instance part is
 * `[a-z0-9][a-z0-9-]*` (at most 64 characters).
 *
 * @since 0.1.0
 * @category schemas
 */
export const StreamId = Schema.String.pipe(Schema.pattern(/^[a-z0-9][a-z0-9-]{0,63}-[0-9A-HJKMNP-TV-Z]{26}$/))

/**
 * Who acted. `anonymous` is for requests that did not authenticate (`auth.failed`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Actor = Schema.Struct({
  type: Schema.Literal("agent", "operator", "system", "anonymous"),
  id: Schema.String
})
/**
 * @since 0.1.0
 * @category models
 */
export type Actor = typeof Actor.Type

/**
 * The actions DESIGN §8 names, plus `proxy.request` and `auth.failed`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const KnownAction = Schema.Literal(
  "session.requested",
  "session.approved",
  "session.denied",
  "session.activated",
  "session.revoked",
  "session.expired",
  "credential.issued",
  "secret.written",
  "secret.deleted",
  "key.generated",
  "key.decrypted",
  "key.rotated",
  "key.rewrapped",
  "key.shredded",
  "catalog.loaded",
  "auth.failed",
  "proxy.request"
)
/**
 * @since 0.1.0
 * @category models
 */
export type KnownAction = typeof KnownAction.Type

/**
 * Any other action: lowercase dotted words (`agent.enrolled`, `link-code.issued`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const ExtensionAction = Schema.TemplateLiteral(Schema.String, ".", Schema.String).pipe(
  Schema.pattern(/^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+$/)
)

/**
 * An action: one of `KnownAction`, or an extension (`domain.verb`, lowercase).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Action = Schema.Union(KnownAction, ExtensionAction)
/**
 * @since 0.1.0
 * @category models
 */
export type Action = typeof Action.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const Outcome = Schema.Literal("success", "denied", "error")
/**
 * @since 0.1.0
 * @category models
 */
export type Outcome = typeof Outcome.Type

/**
 * Capability tier (DESIGN §3). Declared here because audit depends on no catalog code.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Tier = Schema.Literal("low", "medium", "high", "critical")
/**
 * @since 0.1.0
 * @category models
 */
export type Tier = typeof Tier.Type

/**
 * A detail value: a non-secret scalar. Numbers must be finite.
 *
 * @since 0.1.0
 * @category schemas
 */
export const DetailValue = Schema.Union(Schema.String, Schema.Finite, Schema.Boolean, Schema.Null)

/**
 * Non-secret scalars only. Never put a secret, a token or a key here: use `sensitive` on
 * the input, which is stored as an HMAC.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Details = Schema.Record({ key: Schema.String, value: DetailValue })
/**
 * @since 0.1.0
 * @category models
 */
export type Details = typeof Details.Type

/**
 * `name → HMAC-SHA256(audit key, UTF-8 value)` in lowercase hex.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Hmacs = Schema.Record({
  key: Schema.String,
  value: Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/))
})
/**
 * @since 0.1.0
 * @category models
 */
export type Hmacs = typeof Hmacs.Type

const eventFields = {
  id: Ulid,
  stream: StreamId,
  seq: Schema.Int.pipe(Schema.positive()),
  ts: Schema.String.pipe(Schema.pattern(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/)),
  actor: Actor,
  action: Action,
  outcome: Outcome,
  capability: Schema.optional(Schema.String),
  session: Schema.optional(Schema.String),
  wallet: Schema.optional(Schema.String),
  tier: Schema.optional(Tier),
  reason: Schema.optional(Schema.String),
  traceId: Schema.optional(Schema.String),
  details: Details,
  hmac: Schema.optional(Hmacs),
  prevHash: Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/)),
  hash: Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/))
}

/**
 * A stored audit event. `seq` starts at 1 in every stream; `ts` is UTC ISO-8601 with
 * milliseconds; `hash = SHA-256(canonical JSON of the event without hash)` (ADR 0030);
 * `prevHash` is the previous event's `hash`, or `GENESIS_HASH` for seq 1.
 *
 * @since 0.1.0
 * @category schemas
 */
export const AuditEvent = Schema.Struct(eventFields)
/**
 * @since 0.1.0
 * @category models
 */
export type AuditEvent = typeof AuditEvent.Type

/**
 * What a caller passes to `AuditLog.append`: everything except the fields the log assigns
 * (`id`, `stream`, `seq`, `ts`, `prevHash`, `hash`). `details` defaults to `{}`.
 *
 * `sensitive` holds values that must never be stored (token fingerprints, secret names one
 * may not reveal, ...): the log stores `HMAC-SHA256(audit key, value)` under the same name in
 * `hmac`, never the value. A precomputed `hmac` (from `AuditHmac.compute`) is merged with it.
 *
 * @since 0.1.0
 * @category models
 */
export interface AuditInput {
  readonly actor: Actor
  readonly action: Action
  readonly outcome: Outcome
  readonly capability?: string | undefined
  readonly session?: string | undefined
  readonly wallet?: string | undefined
  readonly tier?: Tier | undefined
  readonly reason?: string | undefined
  readonly traceId?: string | undefined
  readonly details?: Details | undefined
  readonly hmac?: Hmacs | undefined
  readonly sensitive?: Readonly<Record<string, Redacted.Redacted<string>>> | undefined
}

/**
 * A signed statement `(stream, seq, hash)`: the stream had, at `ts`, the event `seq` with
 * this `hash`. `final` marks the writer's last checkpoint (the stream was closed cleanly): an
 * event after a final checkpoint is a forgery. `signature` is Ed25519 (base64url) over the
 * canonical JSON of `{ final, hash, seq, stream, ts }`; `keyId` names the key.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Checkpoint = Schema.Struct({
  stream: StreamId,
  seq: Schema.Int.pipe(Schema.nonNegative()),
  hash: Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/)),
  ts: Schema.String,
  final: Schema.Boolean,
  keyId: Schema.String,
  signature: Schema.String
})
/**
 * @since 0.1.0
 * @category models
 */
export type Checkpoint = typeof Checkpoint.Type

/**
 * Why a stream failed verification.
 *
 * - `unparsable`: the record is not JSON or not an audit event.
 * - `hash-mismatch`: the record's content does not hash to its `hash`.
 * - `gap`: a seq is missing (the reported seq is the first missing one).
 * - `out-of-order`: a seq repeats or goes backwards.
 * - `bad-prev-hash`: `prevHash` is not the previous record's `hash`.
 * - `wrong-stream`: the record names another stream.
 * - `bad-checkpoint`: a checkpoint's signature does not verify, or it is unparsable.
 * - `checkpoint-mismatch`: the record at a checkpoint's seq has another hash.
 * - `truncated`: a checkpoint covers seqs the stream no longer has.
 * - `after-final-checkpoint`: records follow the writer's final checkpoint.
 *
 * @since 0.1.0
 * @category schemas
 */
export const BreakReason = Schema.Literal(
  "unparsable",
  "hash-mismatch",
  "gap",
  "out-of-order",
  "bad-prev-hash",
  "wrong-stream",
  "bad-checkpoint",
  "checkpoint-mismatch",
  "truncated",
  "after-final-checkpoint"
)
/**
 * @since 0.1.0
 * @category models
 */
export type BreakReason = typeof BreakReason.Type

/**
 * The first broken record found.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Break = Schema.Struct({
  stream: Schema.String,
  seq: Schema.Int,
  reason: BreakReason,
  message: Schema.String
})
/**
 * @since 0.1.0
 * @category models
 */
export type Break = typeof Break.Type

/**
 * Per-stream verification summary.
 *
 * @since 0.1.0
 * @category schemas
 */
export const StreamReport = Schema.Struct({
  stream: Schema.String,
  records: Schema.Int,
  lastSeq: Schema.Int,
  lastHash: Schema.String,
  checkpointSeq: Schema.optional(Schema.Int),
  sealed: Schema.Boolean,
  ok: Schema.Boolean
})
/**
 * @since 0.1.0
 * @category models
 */
export type StreamReport = typeof StreamReport.Type

/**
 * Result of `AuditReader.verify`: `ok` is true when every stream verified; `firstBreak` is the
 * first broken record in the first broken stream (streams are walked in id order).
 *
 * @since 0.1.0
 * @category schemas
 */
export const VerifyReport = Schema.Struct({
  ok: Schema.Boolean,
  streams: Schema.Array(StreamReport),
  firstBreak: Schema.optional(Break)
})
/**
 * @since 0.1.0
 * @category models
 */
export type VerifyReport = typeof VerifyReport.Type
