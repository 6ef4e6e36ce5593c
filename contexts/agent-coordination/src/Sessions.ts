/**
 * The life of a grant (DESIGN §9): request, get, list, approve, deny, revoke, and the
 * expiry sweep. Decisions come from the catalog's `authorize`; the state machine is
 * `Session`; storage is `SessionRepository`; every step is audited.
 *
 * Rules:
 * - Expiry is evaluated on every read through `Clock` (never DynamoDB TTL). A read that
 *   finds a live session past its deadline persists the `expired` state and audits
 *   `session.expired` (exactly once: the write is conditional on the version).
 * - Transitions are conditional on the version that was read: of racing calls exactly one
 *   wins, the others get `Conflict`. A caller may pin the version it saw (`expectedVersion`).
 * - Only operators approve or deny; the owning agent gets `SelfApproval`; an operator not in
 *   the catalog gets `UnknownOperator`; approvals come from distinct operators.
 * - Another principal's session answers `NotFound`, exactly like a missing one.
 * - Creation is audited before the session is stored (fail closed); a transition is audited
 *   after its conditional write wins, so the audit names exactly the winner. If that append
 *   fails the caller gets `Unavailable` and the transition stands (ADR 0043).
 *
 * @since 0.1.0
 */
import type { AuditLog } from "@aap/audit"
import { Catalog } from "@aap/catalog"
import { Clock, Context, DateTime, Effect, Either, Layer, Option } from "effect"
import { CurrentCatalog } from "./CurrentCatalog.js"
import {
  BadRequest,
  type Conflict,
  type DuplicateApprover,
  type Expired,
  Forbidden,
  type InvalidCursor,
  NotFound,
  RateLimited,
  RequestDenied,
  SelfApproval,
  type Tampered,
  type Unavailable,
  UnknownOperator
} from "./Errors.js"
import * as Audit from "./internal/audit.js"
import type * as Principal from "./Principal.js"
import * as Session from "./Session.js"
import { SessionRepository } from "./SessionRepository.js"

export interface RequestInput {
  readonly capability: string
  readonly ttlSeconds?: number | undefined
  readonly justification?: string | undefined
  readonly breakGlass?: boolean | undefined
}

export interface DecisionInput {
  readonly reason?: string | undefined
  /** Fail with `Conflict` unless the session is still at this version (optimistic concurrency). */
  readonly expectedVersion?: number | undefined
}

export interface ListInput {
  readonly status?: Session.Status | undefined
  readonly agent?: string | undefined
  readonly cursor?: string | undefined
  /** 1–100, default 50. */
  readonly limit?: number | undefined
}

export interface ListPage {
  readonly sessions: ReadonlyArray<Session.Session>
  readonly cursor: Option.Option<string>
}

export interface Limits {
  /** Live (pending or active) sessions one agent may hold. Default 10. */
  readonly maxLiveSessionsPerAgent: number
  /** Session requests one agent may make per minute (fixed window). Default 30. */
  readonly requestsPerMinute: number
  /** How long a pending session waits for its approvals. Default 15 minutes. */
  readonly approvalWindowSeconds: number
}

export const defaultLimits: Limits = {
  maxLiveSessionsPerAgent: 10,
  requestsPerMinute: 30,
  approvalWindowSeconds: 15 * 60
}

export type RequestError = Forbidden | RequestDenied | RateLimited | Tampered | Unavailable
export type ReadError = NotFound | Tampered | Unavailable
export type DecisionError =
  | Forbidden
  | SelfApproval
  | UnknownOperator
  | NotFound
  | Conflict
  | DuplicateApprover
  | Expired
  | Tampered
  | Unavailable
export type RevokeError = Forbidden | NotFound | Conflict | Expired | Tampered | Unavailable
export type ListError = Forbidden | BadRequest | InvalidCursor | Tampered | Unavailable

export interface SessionsShape {
  /** An agent asks for a capability: `active` (low/medium) or `pending_approval` (high/critical). */
  readonly request: (
    principal: Principal.Principal,
    input: RequestInput
  ) => Effect.Effect<Session.Session, RequestError>
  /** The owning agent or an operator; anybody else gets `NotFound`. */
  readonly get: (principal: Principal.Principal, id: string) => Effect.Effect<Session.Session, ReadError>
  readonly approve: (
    principal: Principal.Principal,
    id: string,
    input?: DecisionInput
  ) => Effect.Effect<Session.Session, DecisionError>
  readonly deny: (
    principal: Principal.Principal,
    id: string,
    input?: DecisionInput
  ) => Effect.Effect<Session.Session, DecisionError>
  /** The owning agent or an operator ends an active session. */
  readonly revoke: (
    principal: Principal.Principal,
    id: string,
    input?: DecisionInput
  ) => Effect.Effect<Session.Session, RevokeError>
  /** Operators only; by `status`, by `agent` or both (through indexes, never a scan). */
  readonly list: (principal: Principal.Principal, input: ListInput) => Effect.Effect<ListPage, ListError>
  /** Persists and audits the expiry of up to `limit` due sessions (the worker's sweep). Returns how many. */
  readonly sweep: (limit: number) => Effect.Effect<number, Tampered | Unavailable>
}

export class Sessions extends Context.Tag("@aap/agent-coordination/Sessions")<Sessions, SessionsShape>() {}

const now = Effect.map(Clock.currentTimeMillis, (ms) => DateTime.unsafeMake(ms))

const denialReason = (d: Catalog.Denial): RequestDenied["reason"] => {
  switch (d._tag) {
    case "UnknownAgent":
      return "unknown-agent"
    case "UnknownCapability":
      return "unknown-capability"
    case "AgentNotAllowed":
      return "agent-not-allowed"
    case "TtlTooLong":
      return "ttl-exceeds-max"
    case "BreakGlassRequired":
      return "break-glass-required"
    case "JustificationRequired":
      return "justification-required"
    case "InvalidRequest":
      return "invalid-request"
  }
}

export const make = (
  limits: Limits = defaultLimits
): Effect.Effect<SessionsShape, never, SessionRepository | CurrentCatalog | AuditLog.AuditLog> =>
  Effect.gen(function* () {
    const repo = yield* SessionRepository
    const catalog = yield* CurrentCatalog
    const context = yield* Effect.context<AuditLog.AuditLog>()
    const audit = (input: Parameters<typeof Audit.append>[0]) =>
      Audit.append(input).pipe(Effect.provide(context))

    const auditTransition = (
      actor: Parameters<typeof Audit.append>[0]["actor"],
      s: Session.Session,
      action: Session.Action,
      reason: string | undefined
    ) =>
      audit({
        actor,
        action,
        outcome: "success",
        capability: s.capability,
        session: s.id,
        wallet: s.wallet,
        tier: s.tier,
        reason,
        details: {
          agent: s.agent,
          status: s.status,
          version: s.version,
          approvals: s.approvals.length,
          requiredApprovals: s.requiredApprovals,
          expiresAt: DateTime.formatIso(s.expiresAt)
        }
      })

    const auditRefused = (
      principal: Principal.Principal,
      action: Session.Action,
      s: Session.Session | undefined,
      reason: string,
      capability?: string
    ) =>
      audit({
        actor: Audit.actorOf(principal),
        action,
        outcome: "denied",
        capability: s?.capability ?? capability,
        session: s?.id,
        wallet: s?.wallet,
        tier: s?.tier,
        reason
      })

    /** Persists the expiry of a due session; exactly one reader wins and audits it. */
    const materializeExpiry = (
      s: Session.Session,
      at: DateTime.Utc
    ): Effect.Effect<Session.Session, Tampered | Unavailable> =>
      Either.match(Session.expire(s, at), {
        onLeft: () => Effect.succeed(s),
        onRight: (t) =>
          repo.save(t.session, s.version).pipe(
            Effect.zipRight(
              auditTransition(
                { type: "system", id: "clock" },
                t.session,
                "session.expired",
                t.session.ended?.reason
              )
            ),
            Effect.as(t.session),
            Effect.catchTag("Conflict", () =>
              // Someone else moved it first; show what is stored now, as seen at `at`.
              Effect.map(repo.get(s.id), (o) =>
                Session.view(
                  Option.getOrElse(o, () => s),
                  at
                )
              )
            )
          )
      })

    const notFound = (id: string) => new NotFound({ message: `session ${JSON.stringify(id)} not found` })

    /** Loads a session visible to the principal, with expiry applied (and persisted). */
    const load = (principal: Principal.Principal, id: string): Effect.Effect<Session.Session, ReadError> =>
      Effect.gen(function* () {
        if (!Session.SessionIdPattern.test(id)) return yield* notFound(id)
        const found = yield* repo.get(id)
        if (Option.isNone(found)) return yield* notFound(id)
        const s = found.value
        if (principal._tag === "agent" && s.agent !== principal.id) return yield* notFound(id)
        return yield* materializeExpiry(s, yield* now)
      })

    const checkVersion = (s: Session.Session, input: DecisionInput | undefined) =>
      input?.expectedVersion !== undefined && input.expectedVersion !== s.version
        ? Effect.fail(Session.versionConflict(s))
        : Effect.void

    const apply = <E>(
      principal: Principal.Principal,
      s: Session.Session,
      result: Either.Either<Session.Transition, E>,
      reason: string | undefined
    ): Effect.Effect<Session.Session, E | Conflict | Unavailable> =>
      Either.match(result, {
        onLeft: (e) => Effect.fail(e),
        onRight: (t) =>
          repo.save(t.session, s.version).pipe(
            Effect.zipRight(
              Effect.forEach(
                t.actions,
                (action) => auditTransition(Audit.actorOf(principal), t.session, action, reason),
                {
                  discard: true
                }
              )
            ),
            Effect.as(t.session)
          )
      })

    /** Common path of approve and deny: who may decide, then the transition. */
    const decide = (
      verb: "approve" | "deny",
      principal: Principal.Principal,
      id: string,
      input: DecisionInput | undefined
    ): Effect.Effect<Session.Session, DecisionError> =>
      Effect.gen(function* () {
        const action: Session.Action = verb === "approve" ? "session.approved" : "session.denied"
        if (principal._tag === "agent") {
          const s = yield* load(principal, id)
          yield* auditRefused(principal, action, s, "self-approval")
          return yield* new SelfApproval({
            message: "an agent can never approve or deny its own session",
            session: s.id
          })
        }
        const s = yield* load(principal, id)
        const known = (yield* catalog.get).operators.some((o) => o.id === principal.id)
        if (!known) {
          yield* auditRefused(principal, action, s, "unknown-operator")
          return yield* new UnknownOperator({
            message: `operator ${JSON.stringify(principal.id)} is not in the catalog`,
            operator: principal.id
          })
        }
        yield* checkVersion(s, input)
        const at = yield* now
        const result =
          verb === "approve"
            ? Session.approve(s, principal.id, input?.reason, at)
            : Session.deny(s, principal.id, input?.reason, at)
        return yield* apply(principal, s, result, input?.reason).pipe(
          Effect.tapError((e) =>
            e._tag === "DuplicateApprover"
              ? auditRefused(principal, action, s, "duplicate-approver")
              : Effect.void
          )
        )
      })

    const request: SessionsShape["request"] = (principal, input) =>
      Effect.gen(function* () {
        if (principal._tag !== "agent") {
          return yield* new Forbidden({ message: "only agents request sessions" })
        }
        const at = yield* now
        const epochMinute = Math.floor(DateTime.toEpochMillis(at) / 60_000)
        const allowed = yield* repo.takeSlot(
          principal.id,
          `rpm#${epochMinute}`,
          limits.requestsPerMinute,
          epochMinute * 60 + 120
        )
        if (!allowed) {
          yield* auditRefused(
            principal,
            "session.requested",
            undefined,
            "rate-limited:requests-per-minute",
            input.capability
          )
          return yield* new RateLimited({
            message: `more than ${limits.requestsPerMinute} session requests in one minute`,
            limit: "requests-per-minute",
            retryAfterSeconds: Math.max(1, 60 - Math.floor((DateTime.toEpochMillis(at) % 60_000) / 1000))
          })
        }
        const decision = Catalog.authorize(yield* catalog.get, principal.id, {
          capability: input.capability,
          ...(input.ttlSeconds !== undefined ? { ttlSeconds: input.ttlSeconds } : {}),
          ...(input.breakGlass !== undefined ? { breakGlass: input.breakGlass } : {}),
          ...(input.justification !== undefined ? { justification: input.justification } : {})
        })
        if (Either.isLeft(decision)) {
          const reason = denialReason(decision.left)
          yield* auditRefused(principal, "session.requested", undefined, reason, input.capability)
          return yield* new RequestDenied({
            message: decision.left.message,
            reason,
            capability: input.capability
          })
        }
        const d = decision.right
        const live = yield* repo.countLive(principal.id, at, limits.maxLiveSessionsPerAgent)
        if (live >= limits.maxLiveSessionsPerAgent) {
          yield* auditRefused(
            principal,
            "session.requested",
            undefined,
            "rate-limited:active-sessions",
            input.capability
          )
          return yield* new RateLimited({
            message: `agent already holds ${limits.maxLiveSessionsPerAgent} live sessions`,
            limit: "active-sessions",
            retryAfterSeconds: 60
          })
        }
        const t = Session.create(
          {
            id: yield* Session.makeId,
            agent: principal.id,
            wallet: d.wallet,
            capability: d.capability,
            tier: d.tier,
            ttlSeconds: d.ttlSeconds,
            justification: d.justification,
            breakGlass: d.breakGlass,
            requiredApprovals: d._tag === "NeedsApproval" ? d.approvals : 0,
            approvalWindowSeconds: limits.approvalWindowSeconds
          },
          at
        )
        // Fail closed: the record exists before the session does.
        yield* Effect.forEach(
          t.actions,
          (action) =>
            audit({
              actor: Audit.actorOf(principal),
              action,
              outcome: "success",
              capability: t.session.capability,
              session: t.session.id,
              wallet: t.session.wallet,
              tier: t.session.tier,
              details: {
                agent: t.session.agent,
                status: t.session.status,
                ttlSeconds: t.session.ttlSeconds,
                breakGlass: t.session.breakGlass,
                requiredApprovals: t.session.requiredApprovals,
                justification: t.session.justification ?? null,
                expiresAt: DateTime.formatIso(t.session.expiresAt)
              }
            }),
          { discard: true }
        )
        yield* repo.create(t.session).pipe(Effect.catchTag("Conflict", (e) => Effect.die(e)))
        return t.session
      })

    const list: SessionsShape["list"] = (principal, input) =>
      Effect.gen(function* () {
        if (principal._tag !== "operator")
          return yield* new Forbidden({ message: "only operators list sessions" })
        if (input.status === undefined && input.agent === undefined) {
          return yield* new BadRequest({ message: "give a status, an agent, or both" })
        }
        const limit = input.limit ?? 50
        if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
          return yield* new BadRequest({ message: "limit must be a whole number from 1 to 100" })
        }
        const at = yield* now
        // Expired sessions not yet persisted as such live in the live partitions: move them first.
        if (input.status === "expired") yield* sweepAt(at, 100)
        const options = { limit, cursor: input.cursor }
        const page =
          input.agent !== undefined
            ? yield* repo.listByAgent(input.agent, input.status, at, options)
            : yield* repo.listByStatus(input.status ?? "active", at, options)
        return { sessions: page.sessions.map((s) => Session.view(s, at)), cursor: page.cursor }
      })

    const sweepAt = (at: DateTime.Utc, limit: number) =>
      Effect.gen(function* () {
        const due = yield* repo.listDue(at, limit)
        let n = 0
        for (const s of due) {
          const after = yield* materializeExpiry(s, at)
          if (after.status === "expired" && after.version === s.version + 1) n++
        }
        return n
      })

    return {
      request,
      get: load,
      approve: (principal, id, input) => decide("approve", principal, id, input),
      deny: (principal, id, input) => decide("deny", principal, id, input),
      revoke: (principal, id, input) =>
        Effect.gen(function* () {
          const s = yield* load(principal, id)
          yield* checkVersion(s, input)
          const by: Session.Actor = { type: principal._tag, id: principal.id }
          return yield* apply(principal, s, Session.revoke(s, by, input?.reason, yield* now), input?.reason)
        }),
      list,
      sweep: (limit) => Effect.flatMap(now, (at) => sweepAt(at, limit))
    }
  })

/** The service with its limits (default {@link defaultLimits}). */
export const layer = (
  limits: Partial<Limits> = {}
): Layer.Layer<Sessions, never, SessionRepository | CurrentCatalog | AuditLog.AuditLog> =>
  Layer.effect(Sessions, make({ ...defaultLimits, ...limits }))
