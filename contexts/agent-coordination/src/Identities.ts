/**
 * Identities: agent and operator tokens, link codes, first-start bootstrap (DESIGN §9,
 * ADR 0041).
 *
 * Security rules:
 * - A token or link code is returned exactly once, as `Redacted`, and stored only as its
 *   SHA-256. It never appears in an error, a log or an audit record; failed attempts are
 *   audited with the audit HMAC of the presented value (`sensitive`), never the value.
 * - A bad, used or expired link code fails exactly like a wrong one.
 * - A token item that fails its integrity MAC authenticates nobody.
 *
 * @since 0.1.0
 */
import type { AuditLog } from "@aap/audit"
import { Clock, Context, DateTime, type Duration, Effect, Layer, Option, type Redacted } from "effect"
import { CurrentCatalog } from "./CurrentCatalog.js"
import {
  type Conflict,
  Forbidden,
  NotFound,
  type Tampered,
  Unauthorized,
  type Unavailable
} from "./Errors.js"
import { IdentityRepository, type TokenRecord } from "./IdentityRepository.js"
import * as Audit from "./internal/audit.js"
import * as LinkCode from "./LinkCode.js"
import * as Principal from "./Principal.js"
import * as Token from "./Token.js"

/** A token as operators see it: never the value. */
export interface TokenInfo {
  readonly fingerprint: string
  readonly type: Principal.PrincipalType
  readonly principal: string
  readonly createdAt: DateTime.Utc
  readonly revokedAt: Option.Option<DateTime.Utc>
}

export interface IssuedLinkCode {
  readonly code: Redacted.Redacted<string>
  readonly expiresAt: DateTime.Utc
}

export interface Enrolment {
  readonly agent: string
  readonly token: Redacted.Redacted<string>
}

export interface IdentitiesShape {
  /** Resolves a bearer token to its principal (agents get their wallet from the catalog). */
  readonly authenticate: (
    token: Redacted.Redacted<string>
  ) => Effect.Effect<Principal.Principal, Unauthorized | Unavailable>
  /** An operator issues a token for an agent of the catalog or for an operator. */
  readonly issueToken: (
    by: Principal.Principal,
    subject: { readonly type: Principal.PrincipalType; readonly id: string }
  ) => Effect.Effect<Token.Minted, Forbidden | NotFound | Unavailable>
  /** Revokes the presented token itself (log out). */
  readonly revokeToken: (token: Redacted.Redacted<string>) => Effect.Effect<void, Unauthorized | Unavailable>
  /**
   * An operator revokes a principal's tokens: all of them, or the one with `fingerprint`.
   * Returns how many were revoked now.
   */
  readonly revokeTokens: (
    by: Principal.Principal,
    subject: { readonly type: Principal.PrincipalType; readonly id: string },
    fingerprint?: string
  ) => Effect.Effect<number, Forbidden | Tampered | Unavailable>
  readonly listTokens: (
    by: Principal.Principal,
    subject: { readonly type: Principal.PrincipalType; readonly id: string }
  ) => Effect.Effect<ReadonlyArray<TokenInfo>, Forbidden | Tampered | Unavailable>
  /** An operator mints a single-use, 10-minute link code for an agent of the catalog. */
  readonly issueLinkCode: (
    by: Principal.Principal,
    agent: string
  ) => Effect.Effect<IssuedLinkCode, Forbidden | NotFound | Unavailable>
  /** Anyone redeems a link code once for the agent's new token. */
  readonly redeemLinkCode: (
    code: Redacted.Redacted<string>
  ) => Effect.Effect<Enrolment, Unauthorized | Unavailable>
  /**
   * First start of an embedded broker: creates one operator token for `operator` if no
   * bootstrap happened yet, and returns it; `None` when one exists (it is never shown again).
   */
  readonly bootstrapOperator: (
    operator: string
  ) => Effect.Effect<Option.Option<Redacted.Redacted<string>>, Tampered | Unavailable>
}

export class Identities extends Context.Tag("@aap/agent-coordination/Identities")<
  Identities,
  IdentitiesShape
>() {}

const now = Effect.map(Clock.currentTimeMillis, (ms) => DateTime.unsafeMake(ms))

const operatorOnly = (by: Principal.Principal, what: string): Effect.Effect<Principal.Operator, Forbidden> =>
  Principal.isOperator(by)
    ? Effect.succeed(by)
    : Effect.fail(new Forbidden({ message: `only operators may ${what}` }))

/** A lookup where a tampered item counts as its own outcome (it authenticates nobody). */
const lookup = <A>(
  effect: Effect.Effect<Option.Option<A>, Tampered | Unavailable>
): Effect.Effect<Option.Option<A> | "tampered", Unavailable> =>
  effect.pipe(
    Effect.map((o): Option.Option<A> | "tampered" => o),
    Effect.catchTag("Tampered", () => Effect.succeed("tampered" as const))
  )

const subjectLabel = (s: { readonly type: Principal.PrincipalType; readonly id: string }) =>
  `${s.type}:${s.id}`

export const make: Effect.Effect<
  IdentitiesShape,
  never,
  IdentityRepository | CurrentCatalog | AuditLog.AuditLog
> = Effect.gen(function* () {
  const repo = yield* IdentityRepository
  const catalog = yield* CurrentCatalog
  const context = yield* Effect.context<AuditLog.AuditLog>()
  const audit = (input: Parameters<typeof Audit.append>[0]) =>
    Audit.append(input).pipe(Effect.provide(context))

  const unauthorized = new Unauthorized({ message: "invalid or revoked token" })

  const authFailed = (
    reason: string,
    token: Redacted.Redacted<string>,
    details: Record<string, string> = {}
  ): Effect.Effect<never, Unauthorized | Unavailable> =>
    Effect.zipRight(
      audit({
        actor: Audit.anonymous,
        action: "auth.failed",
        outcome: "denied",
        reason,
        details,
        sensitive: { token }
      }),
      Effect.fail(unauthorized)
    )

  const mintFor = (
    type: Principal.PrincipalType,
    id: string,
    createdBy: string,
    at: DateTime.Utc
  ): Effect.Effect<Token.Minted, Unavailable> =>
    Effect.gen(function* () {
      const minted = yield* Token.mint(type)
      const record: TokenRecord = {
        hash: minted.hash,
        type,
        principal: id,
        fingerprint: minted.fingerprint,
        createdAt: at,
        createdBy,
        version: 1
      }
      // A 256-bit random collision is not a real outcome; treat it as a defect.
      yield* repo.createToken(record).pipe(Effect.catchTag("Conflict", (e) => Effect.die(e)))
      return minted
    })

  const authenticate: IdentitiesShape["authenticate"] = (token) =>
    Effect.gen(function* () {
      const claimed = Token.parse(token)
      if (Option.isNone(claimed)) return yield* authFailed("malformed", token)
      const record = yield* lookup(repo.getToken(Token.hash(token)))
      if (record === "tampered") return yield* authFailed("tampered", token)
      if (Option.isNone(record)) return yield* authFailed("unknown", token)
      const t = record.value
      if (t.type !== claimed.value) return yield* authFailed("tampered", token)
      if (t.revokedAt !== undefined) {
        return yield* authFailed("revoked", token, { fingerprint: t.fingerprint })
      }
      if (t.type === "operator") return Principal.operator(t.principal)
      const agent = (yield* catalog.get).agents.find((a) => a.id === t.principal)
      if (agent === undefined) return yield* authFailed("agent-not-in-catalog", token, { agent: t.principal })
      return Principal.agent(agent.id, agent.wallet)
    })

  const requireSubject = (subject: { readonly type: Principal.PrincipalType; readonly id: string }) =>
    Effect.gen(function* () {
      if (subject.type === "operator") return
      const known = (yield* catalog.get).agents.some((a) => a.id === subject.id)
      if (!known)
        return yield* new NotFound({ message: `agent ${JSON.stringify(subject.id)} is not in the catalog` })
    })

  const revoke = (t: TokenRecord, by: string, at: DateTime.Utc) =>
    repo.saveToken({ ...t, revokedAt: at, revokedBy: by, version: t.version + 1 }, t.version).pipe(
      Effect.as(true),
      Effect.catchTag("Conflict", () => Effect.succeed(false))
    )

  return {
    authenticate,

    issueToken: (by, subject) =>
      Effect.gen(function* () {
        const op = yield* operatorOnly(by, "issue tokens")
        yield* requireSubject(subject)
        const minted = yield* mintFor(subject.type, subject.id, op.id, yield* now)
        yield* audit({
          actor: Audit.actorOf(op),
          action: "token.issued",
          outcome: "success",
          details: { subject: subjectLabel(subject), fingerprint: minted.fingerprint }
        })
        return minted
      }),

    revokeToken: (token) =>
      Effect.gen(function* () {
        const principal = yield* authenticate(token)
        const record = yield* repo
          .getToken(Token.hash(token))
          .pipe(Effect.catchTag("Tampered", () => Effect.succeed(Option.none<TokenRecord>())))
        if (Option.isNone(record)) return yield* unauthorized
        if (yield* revoke(record.value, `${principal._tag}:${principal.id}`, yield* now)) {
          yield* audit({
            actor: Audit.actorOf(principal),
            action: "token.revoked",
            outcome: "success",
            details: {
              subject: subjectLabel({ type: principal._tag, id: principal.id }),
              fingerprint: record.value.fingerprint
            }
          })
        }
      }),

    revokeTokens: (by, subject, fingerprint) =>
      Effect.gen(function* () {
        const op = yield* operatorOnly(by, "revoke tokens")
        const at = yield* now
        const live = (yield* repo.listTokens(subject.type, subject.id)).filter(
          (t) => t.revokedAt === undefined && (fingerprint === undefined || t.fingerprint === fingerprint)
        )
        let n = 0
        for (const t of live) {
          if (yield* revoke(t, `operator:${op.id}`, at)) {
            n++
            yield* audit({
              actor: Audit.actorOf(op),
              action: "token.revoked",
              outcome: "success",
              details: { subject: subjectLabel(subject), fingerprint: t.fingerprint }
            })
          }
        }
        return n
      }),

    listTokens: (by, subject) =>
      Effect.gen(function* () {
        yield* operatorOnly(by, "list tokens")
        return (yield* repo.listTokens(subject.type, subject.id)).map(
          (t): TokenInfo => ({
            fingerprint: t.fingerprint,
            type: t.type,
            principal: t.principal,
            createdAt: t.createdAt,
            revokedAt: Option.fromNullable(t.revokedAt)
          })
        )
      }),

    issueLinkCode: (by, agent) =>
      Effect.gen(function* () {
        const op = yield* operatorOnly(by, "issue link codes")
        yield* requireSubject({ type: "agent", id: agent })
        const at = yield* now
        const code = yield* LinkCode.mint
        const expiresAt = DateTime.addDuration(at, LinkCode.lifetime)
        yield* repo
          .createLinkCode({
            hash: LinkCode.hash(code),
            agent,
            createdBy: op.id,
            createdAt: at,
            expiresAt,
            version: 1
          })
          .pipe(Effect.catchTag("Conflict", (e) => Effect.die(e)))
        yield* audit({
          actor: Audit.actorOf(op),
          action: "link-code.issued",
          outcome: "success",
          details: { agent, expiresAt: DateTime.formatIso(expiresAt) },
          sensitive: { code }
        })
        return { code, expiresAt }
      }),

    redeemLinkCode: (code) =>
      Effect.gen(function* () {
        const invalid = new Unauthorized({ message: "invalid or expired link code" })
        const fail = (reason: string) =>
          Effect.zipRight(
            audit({
              actor: Audit.anonymous,
              action: "auth.failed",
              outcome: "denied",
              reason,
              details: { via: "link-code" },
              sensitive: { code }
            }),
            Effect.fail(invalid)
          )
        if (!LinkCode.isWellFormed(code)) return yield* fail("malformed")
        const found = yield* lookup(repo.getLinkCode(LinkCode.hash(code)))
        if (found === "tampered") return yield* fail("tampered")
        if (Option.isNone(found)) return yield* fail("unknown")
        const record = found.value
        const at = yield* now
        if (record.redeemedAt !== undefined) return yield* fail("already-redeemed")
        if (DateTime.greaterThanOrEqualTo(at, record.expiresAt)) return yield* fail("expired")
        const won = yield* repo
          .saveLinkCode({ ...record, redeemedAt: at, version: record.version + 1 }, record.version)
          .pipe(
            Effect.as(true),
            Effect.catchTag("Conflict", () => Effect.succeed(false))
          )
        if (!won) return yield* fail("already-redeemed")
        const agent = (yield* catalog.get).agents.find((a) => a.id === record.agent)
        if (agent === undefined) return yield* fail("agent-not-in-catalog")
        const minted = yield* mintFor("agent", agent.id, `link-code:${record.createdBy}`, at)
        yield* audit({
          actor: { type: "agent", id: agent.id },
          action: "link-code.redeemed",
          outcome: "success",
          wallet: agent.wallet,
          details: { agent: agent.id, issuedBy: record.createdBy, fingerprint: minted.fingerprint }
        })
        return { agent: agent.id, token: minted.token }
      }),

    bootstrapOperator: (operator) =>
      Effect.gen(function* () {
        const existing = yield* repo.getBootstrap
        if (Option.isSome(existing)) {
          const token = yield* repo.getToken(existing.value.tokenHash)
          if (Option.isSome(token)) return Option.none()
        }
        // No marker, or a marker whose token was never written (a crash in between).
        const at = yield* now
        const minted = yield* Token.mint("operator")
        const won = yield* repo
          .saveBootstrap(
            {
              operator,
              tokenHash: minted.hash,
              createdAt: at,
              version: Option.match(existing, { onNone: () => 1, onSome: (b) => b.version + 1 })
            },
            Option.match(existing, { onNone: () => undefined, onSome: (b) => b.version })
          )
          .pipe(
            Effect.as(true),
            Effect.catchTag("Conflict", () => Effect.succeed(false))
          )
        if (!won) return Option.none()
        yield* repo
          .createToken({
            hash: minted.hash,
            type: "operator",
            principal: operator,
            fingerprint: minted.fingerprint,
            createdAt: at,
            createdBy: "bootstrap",
            version: 1
          })
          .pipe(Effect.catchTag("Conflict", (e: Conflict) => Effect.die(e)))
        yield* audit({
          actor: Audit.system,
          action: "token.issued",
          outcome: "success",
          details: { subject: `operator:${operator}`, fingerprint: minted.fingerprint, bootstrap: true }
        })
        return Option.some(minted.token)
      })
  }
})

export const layer: Layer.Layer<Identities, never, IdentityRepository | CurrentCatalog | AuditLog.AuditLog> =
  Layer.effect(Identities, make)

/** Link codes live this long (10 minutes). */
export const linkCodeLifetime: Duration.Duration = LinkCode.lifetime
