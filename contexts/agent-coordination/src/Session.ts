/**
 * The session (a grant: agent × capability × wallet) and its state machine as pure
 * functions. Storage, clocks, audit and authorization live in `Sessions`; this module only
 * says which transitions exist and what they produce.
 *
 * ```
 * pending_approval ──approve (n distinct)──▶ active ──revoke──▶ revoked
 *        │                                     └──(expiresAt)──▶ expired
 *        ├──deny──▶ denied
 *        └──(approval window over)──▶ expired
 * ```
 *
 * @since 0.1.0
 */
import * as Crypto from "node:crypto"
import { DateTime, Effect, Either, Schema } from "effect"
import { Conflict, DuplicateApprover, Expired } from "./Errors.js"

export const Status = Schema.Literal("pending_approval", "active", "expired", "revoked", "denied")
export type Status = typeof Status.Type

export const statuses: ReadonlyArray<Status> = ["pending_approval", "active", "expired", "revoked", "denied"]

export const Tier = Schema.Literal("low", "medium", "high", "critical")
export type Tier = typeof Tier.Type

/** Who ended or decided a session. */
export const Actor = Schema.Struct({
  type: Schema.Literal("agent", "operator", "system"),
  id: Schema.String
})
export type Actor = typeof Actor.Type

/** One operator approval: who, when, why. */
export const Approval = Schema.Struct({
  operator: Schema.String,
  at: Schema.DateTimeUtc,
  reason: Schema.optional(Schema.String)
})
export type Approval = typeof Approval.Type

/** How a session ended (denied, revoked or expired). */
export const Ending = Schema.Struct({
  by: Actor,
  at: Schema.DateTimeUtc,
  reason: Schema.optional(Schema.String)
})
export type Ending = typeof Ending.Type

export const SessionIdPattern = /^ses_[0-9a-z]{26}$/
export const SessionId = Schema.String.pipe(Schema.pattern(SessionIdPattern))

export const Session = Schema.Struct({
  id: Schema.String,
  agent: Schema.String,
  wallet: Schema.String,
  capability: Schema.String,
  tier: Tier,
  status: Status,
  /** Incremented by every transition; transitions are conditional on it. */
  version: Schema.Int,
  /** Granted lifetime once active. */
  ttlSeconds: Schema.Int,
  createdAt: Schema.DateTimeUtc,
  updatedAt: Schema.DateTimeUtc,
  /** Deadline of the current state: the approval window while pending, the end of the grant while active. */
  expiresAt: Schema.DateTimeUtc,
  activatedAt: Schema.optional(Schema.DateTimeUtc),
  justification: Schema.optional(Schema.String),
  breakGlass: Schema.Boolean,
  requiredApprovals: Schema.Int,
  approvals: Schema.Array(Approval),
  ended: Schema.optional(Ending)
})
export type Session = typeof Session.Type
export type SessionEncoded = typeof Session.Encoded

/** Audit actions a transition produces, in order. */
export type Action =
  | "session.requested"
  | "session.approved"
  | "session.activated"
  | "session.denied"
  | "session.revoked"
  | "session.expired"

export interface Transition {
  readonly session: Session
  readonly actions: ReadonlyArray<Action>
}

const B32 = "0123456789abcdefghjkmnpqrstvwxyz"

/** A new random session id: `ses_` + 26 Crockford base32 characters (128 bits). */
export const makeId: Effect.Effect<string> = Effect.sync(() => {
  let v = 0n
  for (const b of Crypto.randomBytes(16)) v = (v << 8n) | BigInt(b)
  let out = ""
  for (let i = 0; i < 26; i++) {
    out = B32[Number(v & 31n)] + out
    v >>= 5n
  }
  return `ses_${out}`
})

export const isLive = (s: Session): boolean => s.status === "pending_approval" || s.status === "active"
export const isTerminal = (s: Session): boolean => !isLive(s)

/** Whether a live session's deadline has passed at `now`. */
export const isDue = (s: Session, now: DateTime.Utc): boolean =>
  isLive(s) && DateTime.greaterThanOrEqualTo(now, s.expiresAt)

export interface NewSession {
  readonly id: string
  readonly agent: string
  readonly wallet: string
  readonly capability: string
  readonly tier: Tier
  readonly ttlSeconds: number
  readonly justification?: string | undefined
  readonly breakGlass: boolean
  /** 0 for auto-granted tiers. */
  readonly requiredApprovals: number
  /** How long a pending session waits for its approvals. */
  readonly approvalWindowSeconds: number
}

/** A new session: `active` when no approval is needed, else `pending_approval`. */
export const create = (input: NewSession, now: DateTime.Utc): Transition => {
  const pending = input.requiredApprovals > 0
  const session: Session = {
    id: input.id,
    agent: input.agent,
    wallet: input.wallet,
    capability: input.capability,
    tier: input.tier,
    status: pending ? "pending_approval" : "active",
    version: 1,
    ttlSeconds: input.ttlSeconds,
    createdAt: now,
    updatedAt: now,
    expiresAt: DateTime.add(now, { seconds: pending ? input.approvalWindowSeconds : input.ttlSeconds }),
    ...(pending ? {} : { activatedAt: now }),
    ...(input.justification !== undefined ? { justification: input.justification } : {}),
    breakGlass: input.breakGlass,
    requiredApprovals: input.requiredApprovals,
    approvals: []
  }
  return {
    session,
    actions: pending ? ["session.requested"] : ["session.requested", "session.activated"]
  }
}

const invalid = (s: Session, verb: string) =>
  new Conflict({
    message: `cannot ${verb} a session in state ${s.status}`,
    reason: "invalid-transition",
    status: s.status
  })

/** The session moved on since the caller looked at it. */
export const versionConflict = (s: Session) =>
  new Conflict({
    message: `the session is at version ${s.version}, not the expected one`,
    reason: "concurrent-update",
    status: s.status
  })

const expiredError = (s: Session) => new Expired({ message: "the session has expired", session: s.id })

const bump = (s: Session, now: DateTime.Utc): Pick<Session, "version" | "updatedAt"> => ({
  version: s.version + 1,
  updatedAt: now
})

/**
 * Expiry as seen at `now`: a live session past its deadline becomes `expired` (ended at its
 * deadline, by the system). `None`-like: returns the input unchanged when nothing is due.
 */
export const expire = (s: Session, now: DateTime.Utc): Either.Either<Transition, Conflict> =>
  isDue(s, now)
    ? Either.right({
        session: {
          ...s,
          ...bump(s, now),
          status: "expired",
          ended: {
            by: { type: "system", id: "clock" },
            at: s.expiresAt,
            reason: s.status === "pending_approval" ? "approval window elapsed" : "ttl elapsed"
          }
        },
        actions: ["session.expired"]
      })
    : Either.left(invalid(s, "expire"))

/** The session as it is at `now` (expiry evaluated lazily, on every read). */
export const view = (s: Session, now: DateTime.Utc): Session =>
  Either.match(expire(s, now), { onLeft: () => s, onRight: (t) => t.session })

/**
 * Records one operator approval. The session activates when `requiredApprovals` distinct
 * operators have approved; its TTL starts then.
 */
export const approve = (
  s: Session,
  operator: string,
  reason: string | undefined,
  now: DateTime.Utc
): Either.Either<Transition, Conflict | Expired | DuplicateApprover> => {
  if (isDue(s, now) || s.status === "expired") return Either.left(expiredError(s))
  if (s.status !== "pending_approval") return Either.left(invalid(s, "approve"))
  if (s.approvals.some((a) => a.operator === operator)) {
    return Either.left(
      new DuplicateApprover({
        message: `operator ${operator} has already approved this session; another operator must approve`,
        operator,
        approvals: s.approvals.length,
        required: s.requiredApprovals
      })
    )
  }
  const approvals = [...s.approvals, { operator, at: now, ...(reason !== undefined ? { reason } : {}) }]
  if (approvals.length < s.requiredApprovals) {
    return Either.right({ session: { ...s, ...bump(s, now), approvals }, actions: ["session.approved"] })
  }
  return Either.right({
    session: {
      ...s,
      ...bump(s, now),
      approvals,
      status: "active",
      activatedAt: now,
      expiresAt: DateTime.add(now, { seconds: s.ttlSeconds })
    },
    actions: ["session.approved", "session.activated"]
  })
}

/** An operator denies a pending session. */
export const deny = (
  s: Session,
  operator: string,
  reason: string | undefined,
  now: DateTime.Utc
): Either.Either<Transition, Conflict | Expired> => {
  if (isDue(s, now) || s.status === "expired") return Either.left(expiredError(s))
  if (s.status !== "pending_approval") return Either.left(invalid(s, "deny"))
  return Either.right({
    session: {
      ...s,
      ...bump(s, now),
      status: "denied",
      ended: { by: { type: "operator", id: operator }, at: now, ...(reason !== undefined ? { reason } : {}) }
    },
    actions: ["session.denied"]
  })
}

/** The owning agent or an operator ends an active session early. */
export const revoke = (
  s: Session,
  by: Actor,
  reason: string | undefined,
  now: DateTime.Utc
): Either.Either<Transition, Conflict | Expired> => {
  if (isDue(s, now) || s.status === "expired") return Either.left(expiredError(s))
  if (s.status !== "active") return Either.left(invalid(s, "revoke"))
  return Either.right({
    session: {
      ...s,
      ...bump(s, now),
      status: "revoked",
      ended: { by, at: now, ...(reason !== undefined ? { reason } : {}) }
    },
    actions: ["session.revoked"]
  })
}
