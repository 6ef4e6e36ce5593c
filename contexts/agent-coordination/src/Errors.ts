/**
 * Errors that cross the wire. Every error carries its HTTP status as a schema annotation
 * (`HttpApiSchema.annotations({ status })`), so the broker's `HttpApi` and every
 * `HttpApiClient` agree on them. Messages never contain secret material.
 *
 * @since 0.1.0
 */
import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

/** 401: no token, an unknown or revoked token, or a bad/used/expired link code. */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()(
  "Unauthorized",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 401 })
) {}

/** 403: the principal may not do this (e.g. an agent calling an operator endpoint). */
export class Forbidden extends Schema.TaggedError<Forbidden>()(
  "Forbidden",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 403 })
) {}

/** 403: the owning agent tried to approve or deny its own session. */
export class SelfApproval extends Schema.TaggedError<SelfApproval>()(
  "SelfApproval",
  { message: Schema.String, session: Schema.String },
  HttpApiSchema.annotations({ status: 403 })
) {}

/** 403: the operator principal is not declared in the current catalog. */
export class UnknownOperator extends Schema.TaggedError<UnknownOperator>()(
  "UnknownOperator",
  { message: Schema.String, operator: Schema.String },
  HttpApiSchema.annotations({ status: 403 })
) {}

/** Reasons the catalog (or a session precondition) refuses a request. */
export const DenialReason = Schema.Literal(
  "unknown-agent",
  "unknown-capability",
  "agent-not-allowed",
  "ttl-exceeds-max",
  "invalid-ttl",
  "break-glass-required",
  "justification-required",
  "invalid-request",
  "denied"
)
export type DenialReason = typeof DenialReason.Type

/** 403: the catalog denies the request (what the catalog does not grant is denied). */
export class RequestDenied extends Schema.TaggedError<RequestDenied>()(
  "RequestDenied",
  { message: Schema.String, reason: DenialReason, capability: Schema.String },
  HttpApiSchema.annotations({ status: 403 })
) {}

/** 404: missing, or not visible to this principal (the same answer for both). */
export class NotFound extends Schema.TaggedError<NotFound>()(
  "NotFound",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

/**
 * 409: the transition is not allowed from the session's current state, or another call
 * changed the session first (the loser of a race).
 */
export class Conflict extends Schema.TaggedError<Conflict>()(
  "Conflict",
  {
    message: Schema.String,
    reason: Schema.Literal("concurrent-update", "invalid-transition"),
    status: Schema.optional(Schema.String)
  },
  HttpApiSchema.annotations({ status: 409 })
) {}

/** 409: the operator has already approved this session; approvals must come from distinct operators. */
export class DuplicateApprover extends Schema.TaggedError<DuplicateApprover>()(
  "DuplicateApprover",
  {
    message: Schema.String,
    operator: Schema.String,
    approvals: Schema.Number,
    required: Schema.Number
  },
  HttpApiSchema.annotations({ status: 409 })
) {}

/** 410: the session (or its approval window) has expired. */
export class Expired extends Schema.TaggedError<Expired>()(
  "Expired",
  { message: Schema.String, session: Schema.String },
  HttpApiSchema.annotations({ status: 410 })
) {}

/** 429: a per-agent limit (active sessions or requests per minute) is exceeded. */
export class RateLimited extends Schema.TaggedError<RateLimited>()(
  "RateLimited",
  {
    message: Schema.String,
    limit: Schema.Literal("active-sessions", "requests-per-minute"),
    retryAfterSeconds: Schema.Number
  },
  HttpApiSchema.annotations({ status: 429 })
) {}

/** 400: a request the service cannot act on (e.g. a list without `status` or `agent`). */
export class BadRequest extends Schema.TaggedError<BadRequest>()(
  "BadRequest",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {}

/** 400: a list cursor that this broker did not produce. */
export class InvalidCursor extends Schema.TaggedError<InvalidCursor>()(
  "InvalidCursor",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {}

/**
 * 500: a stored session, token or link-code item failed its integrity check (it was edited
 * outside the broker). The item is never trusted; the event is audited.
 */
export class Tampered extends Schema.TaggedError<Tampered>()(
  "Tampered",
  { message: Schema.String, kind: Schema.Literal("session", "token", "link-code", "bootstrap", "secret") },
  HttpApiSchema.annotations({ status: 500 })
) {}

/** 503: the coordination store, the key provider or the audit log is unavailable (fail closed). */
export class Unavailable extends Schema.TaggedError<Unavailable>()(
  "Unavailable",
  { message: Schema.String, dependency: Schema.Literal("store", "keys", "audit", "catalog") },
  HttpApiSchema.annotations({ status: 503 })
) {}
