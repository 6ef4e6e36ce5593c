import type { AuditEvent } from "@aap/audit"
import { AuditReader, AuditSink } from "@aap/audit"
import { assert, layer } from "@effect/vitest"
import { Effect, Either, type Layer, Option, TestClock } from "effect"
import * as Store from "../../src/CoordinationStore.js"
import type { RequestDenied } from "../../src/Errors.js"
import type * as Principal from "../../src/Principal.js"
import * as SessionRepository from "../../src/SessionRepository.js"
import * as Sessions from "../../src/Sessions.js"
import { alice, bob, carol, claude, codex, mallory, services } from "./fixtures.js"

export const auditEvents = (filter: (e: AuditEvent.AuditEvent) => boolean = () => true) =>
  Effect.flatMap(AuditReader.AuditReader, (r) => r.query({ limit: 10_000 })).pipe(
    Effect.map((events) => events.filter(filter)),
    Effect.orDie
  )

const actionsOf = (session: string) =>
  Effect.map(
    auditEvents((e) => e.session === session && e.outcome === "success"),
    (events) => events.map((e) => e.action)
  )

const request = (p: Principal.Principal, input: Sessions.RequestInput) =>
  Effect.flatMap(Sessions.Sessions, (s) => s.request(p, input))

const svc = Sessions.Sessions

/**
 * The Sessions service contract over one store adapter. `base` supplies what the store layer
 * needs (the embedded engine for DynamoDB); every test gets fresh services and `TestClock`.
 */
export const suite = <R>(
  name: string,
  base: Layer.Layer<R, unknown>,
  store: Layer.Layer<Store.CoordinationStore, unknown, R>
) =>
  layer(base, { timeout: "60 seconds" })(`Sessions: ${name}`, (it) => {
    const test = <A, E>(
      title: string,
      body: () => Effect.Effect<A, E, Layer.Layer.Success<ReturnType<typeof services>>>,
      limits: Partial<Sessions.Limits> = {}
    ) => it.effect(title, () => body().pipe(Effect.provide(services(store, limits))))

    test("low and medium are active at once; high and critical wait for approval", () =>
      Effect.gen(function* () {
        const low = yield* request(codex, { capability: "openrouter-chat" })
        assert.strictEqual(low.status, "active")
        assert.strictEqual(low.ttlSeconds, 15 * 60)
        assert.strictEqual(low.wallet, "codex")
        const medium = yield* request(codex, { capability: "forge-token", ttlSeconds: 120 })
        assert.strictEqual(medium.status, "active")
        assert.strictEqual(medium.ttlSeconds, 120)
        const high = yield* request(codex, { capability: "ssh-platform-host" })
        assert.strictEqual(high.status, "pending_approval")
        assert.strictEqual(high.requiredApprovals, 1)
        const critical = yield* request(codex, {
          capability: "break-glass-admin",
          breakGlass: true,
          justification: "prod is down"
        })
        assert.strictEqual(critical.status, "pending_approval")
        assert.strictEqual(critical.requiredApprovals, 2)
        assert.deepStrictEqual(yield* actionsOf(low.id), ["session.requested", "session.activated"])
        assert.deepStrictEqual(yield* actionsOf(high.id), ["session.requested"])
        const [requested] = yield* auditEvents((e) => e.session === critical.id)
        assert.strictEqual(requested?.details.justification, "prod is down")
        assert.strictEqual(requested?.tier, "critical")
      }))

    test("the catalog's denials are typed and audited; operators cannot request", () =>
      Effect.gen(function* () {
        const cases: Array<[Principal.Principal, Sessions.RequestInput, RequestDenied["reason"]]> = [
          [codex, { capability: "nope" }, "unknown-capability"],
          [claude, { capability: "forge-token" }, "agent-not-allowed"],
          [codex, { capability: "openrouter-chat", ttlSeconds: 7200 }, "ttl-exceeds-max"],
          [codex, { capability: "break-glass-admin", justification: "x" }, "break-glass-required"],
          [codex, { capability: "break-glass-admin", breakGlass: true }, "justification-required"],
          [
            { _tag: "agent", id: "ghost", wallet: "ghost" },
            { capability: "openrouter-chat" },
            "unknown-agent"
          ]
        ]
        for (const [p, input, reason] of cases) {
          const error = yield* Effect.flip(request(p, input))
          assert.strictEqual(error._tag, "RequestDenied")
          assert.strictEqual(error._tag === "RequestDenied" && error.reason, reason)
        }
        const denied = yield* auditEvents((e) => e.action === "session.requested" && e.outcome === "denied")
        assert.deepStrictEqual(
          denied.map((e) => e.reason),
          cases.map((c) => c[2])
        )
        assert.strictEqual(
          (yield* Effect.flip(request(alice, { capability: "openrouter-chat" })))._tag,
          "Forbidden"
        )
      }))

    test("get: the owner and operators see it; another agent gets the same NotFound as a missing id", () =>
      Effect.gen(function* () {
        const s = yield* request(codex, { capability: "openrouter-chat" })
        const sessions = yield* svc
        assert.strictEqual((yield* sessions.get(codex, s.id)).id, s.id)
        assert.strictEqual((yield* sessions.get(alice, s.id)).id, s.id)
        const other = yield* Effect.flip(sessions.get(claude, s.id))
        const missingId = "ses_zzzzzzzzzzzzzzzzzzzzzzzzzz"
        const missing = yield* Effect.flip(sessions.get(claude, missingId))
        assert.strictEqual(other._tag, "NotFound")
        assert.strictEqual(missing._tag, "NotFound")
        assert.strictEqual(other.message.replace(s.id, "ID"), missing.message.replace(missingId, "ID"))
        assert.strictEqual((yield* Effect.flip(sessions.get(alice, "../../etc")))._tag, "NotFound")
      }))

    test("approve: operator only; recorded with operator, time and reason; TTL starts at activation", () =>
      Effect.gen(function* () {
        const sessions = yield* svc
        const s = yield* request(codex, { capability: "ssh-platform-host" })
        yield* TestClock.adjust("2 minutes")
        const approved = yield* sessions.approve(alice, s.id, { reason: "change ticket 42" })
        assert.strictEqual(approved.status, "active")
        assert.strictEqual(approved.approvals.length, 1)
        assert.strictEqual(approved.approvals[0]?.operator, "alice")
        assert.strictEqual(approved.approvals[0]?.reason, "change ticket 42")
        const t0 = s.createdAt.epochMillis
        assert.strictEqual(approved.approvals[0]?.at.epochMillis, t0 + 120_000)
        assert.strictEqual(approved.expiresAt.epochMillis, t0 + 120_000 + 600_000)
        assert.deepStrictEqual(yield* actionsOf(s.id), [
          "session.requested",
          "session.approved",
          "session.activated"
        ])
        const [event] = yield* auditEvents((e) => e.session === s.id && e.action === "session.approved")
        assert.deepStrictEqual(event?.actor, { type: "operator", id: "alice" })
        assert.strictEqual(event?.reason, "change ticket 42")
      }))

    test("self-approval is SelfApproval; another agent gets NotFound; both change nothing", () =>
      Effect.gen(function* () {
        const sessions = yield* svc
        const s = yield* request(codex, { capability: "ssh-platform-host" })
        const self = yield* Effect.flip(sessions.approve(codex, s.id))
        assert.strictEqual(self._tag, "SelfApproval")
        assert.strictEqual((yield* Effect.flip(sessions.deny(codex, s.id)))._tag, "SelfApproval")
        assert.strictEqual((yield* Effect.flip(sessions.approve(claude, s.id)))._tag, "NotFound")
        assert.strictEqual((yield* sessions.get(alice, s.id)).status, "pending_approval")
        const refused = yield* auditEvents((e) => e.session === s.id && e.outcome === "denied")
        assert.deepStrictEqual(
          refused.map((e) => e.reason),
          ["self-approval", "self-approval"]
        )
      }))

    test("an operator who is not in the catalog is UnknownOperator", () =>
      Effect.gen(function* () {
        const sessions = yield* svc
        const s = yield* request(codex, { capability: "ssh-platform-host" })
        const error = yield* Effect.flip(sessions.approve(mallory, s.id))
        assert.strictEqual(error._tag, "UnknownOperator")
        assert.strictEqual((yield* Effect.flip(sessions.deny(mallory, s.id)))._tag, "UnknownOperator")
        assert.strictEqual((yield* sessions.get(alice, s.id)).status, "pending_approval")
      }))

    test("critical needs the catalog's number of distinct operators", () =>
      Effect.gen(function* () {
        const sessions = yield* svc
        const s = yield* request(codex, {
          capability: "break-glass-admin",
          breakGlass: true,
          justification: "incident"
        })
        const first = yield* sessions.approve(alice, s.id, { reason: "seen" })
        assert.strictEqual(first.status, "pending_approval")
        const again = yield* Effect.flip(sessions.approve(alice, s.id))
        assert.strictEqual(again._tag, "DuplicateApprover")
        assert.strictEqual((yield* sessions.get(codex, s.id)).status, "pending_approval")
        const second = yield* sessions.approve(bob, s.id, { reason: "agreed" })
        assert.strictEqual(second.status, "active")
        assert.deepStrictEqual(
          second.approvals.map((a) => [a.operator, a.reason]),
          [
            ["alice", "seen"],
            ["bob", "agreed"]
          ]
        )
        assert.deepStrictEqual(yield* actionsOf(s.id), [
          "session.requested",
          "session.approved",
          "session.approved",
          "session.activated"
        ])
        assert.strictEqual((yield* Effect.flip(sessions.approve(carol, s.id)))._tag, "Conflict")
      }))

    test("deny ends a pending session; every later decision or revocation is a Conflict", () =>
      Effect.gen(function* () {
        const sessions = yield* svc
        const s = yield* request(codex, { capability: "ssh-platform-host" })
        const denied = yield* sessions.deny(bob, s.id, { reason: "not now" })
        assert.strictEqual(denied.status, "denied")
        assert.deepStrictEqual(denied.ended?.by, { type: "operator", id: "bob" })
        for (const attempt of [
          sessions.approve(alice, s.id),
          sessions.deny(alice, s.id),
          sessions.revoke(alice, s.id)
        ]) {
          const error = yield* Effect.flip(attempt)
          assert.strictEqual(error._tag, "Conflict")
          assert.strictEqual(error._tag === "Conflict" && error.reason, "invalid-transition")
        }
        assert.deepStrictEqual(yield* actionsOf(s.id), ["session.requested", "session.denied"])
      }))

    test("revoke: the owner or an operator; not another agent; not a pending session; once", () =>
      Effect.gen(function* () {
        const sessions = yield* svc
        const mine = yield* request(codex, { capability: "openrouter-chat" })
        assert.strictEqual((yield* Effect.flip(sessions.revoke(claude, mine.id)))._tag, "NotFound")
        const revoked = yield* sessions.revoke(codex, mine.id, { reason: "done" })
        assert.strictEqual(revoked.status, "revoked")
        assert.deepStrictEqual(revoked.ended?.by, { type: "agent", id: "codex" })
        assert.strictEqual((yield* Effect.flip(sessions.revoke(codex, mine.id)))._tag, "Conflict")
        const other = yield* request(claude, { capability: "openrouter-chat" })
        assert.strictEqual((yield* sessions.revoke(carol, other.id)).ended?.by.id, "carol")
        const pending = yield* request(codex, { capability: "ssh-platform-host" })
        assert.strictEqual((yield* Effect.flip(sessions.revoke(codex, pending.id)))._tag, "Conflict")
        assert.deepStrictEqual(yield* actionsOf(mine.id), [
          "session.requested",
          "session.activated",
          "session.revoked"
        ])
      }))

    test("expiry is evaluated on every read with the Clock, persisted and audited once", () =>
      Effect.gen(function* () {
        const sessions = yield* svc
        const s = yield* request(codex, { capability: "openrouter-chat", ttlSeconds: 60 })
        yield* TestClock.adjust("59 seconds")
        assert.strictEqual((yield* sessions.get(codex, s.id)).status, "active")
        yield* TestClock.adjust("1 second")
        const e = yield* sessions.get(codex, s.id)
        assert.strictEqual(e.status, "expired")
        assert.strictEqual(e.ended?.at.epochMillis, s.createdAt.epochMillis + 60_000)
        assert.strictEqual((yield* sessions.get(alice, s.id)).status, "expired")
        const error = yield* Effect.flip(sessions.revoke(codex, s.id))
        assert.strictEqual(error._tag, "Expired")
        assert.deepStrictEqual(yield* actionsOf(s.id), [
          "session.requested",
          "session.activated",
          "session.expired"
        ])
        // stored as expired, not only shown so
        const repo = yield* SessionRepository.SessionRepository
        assert.strictEqual(Option.getOrThrow(yield* repo.get(s.id)).status, "expired")
      }))

    test("a pending session expires when its approval window ends; approving then is Expired", () =>
      Effect.gen(function* () {
        const sessions = yield* svc
        const s = yield* request(codex, { capability: "ssh-platform-host" })
        yield* TestClock.adjust("15 minutes")
        assert.strictEqual((yield* Effect.flip(sessions.approve(alice, s.id)))._tag, "Expired")
        assert.strictEqual((yield* Effect.flip(sessions.deny(alice, s.id)))._tag, "Expired")
        assert.strictEqual((yield* sessions.get(codex, s.id)).status, "expired")
        assert.deepStrictEqual(yield* actionsOf(s.id), ["session.requested", "session.expired"])
      }))

    test("an approved session lives for its TTL from approval, then expires", () =>
      Effect.gen(function* () {
        const sessions = yield* svc
        const s = yield* request(codex, { capability: "ssh-platform-host", ttlSeconds: 300 })
        yield* TestClock.adjust("10 minutes")
        yield* sessions.approve(alice, s.id)
        yield* TestClock.adjust("299 seconds")
        assert.strictEqual((yield* sessions.get(codex, s.id)).status, "active")
        yield* TestClock.adjust("1 second")
        assert.strictEqual((yield* sessions.get(codex, s.id)).status, "expired")
      }))

    test("the sweep expires due sessions once and audits each", () =>
      Effect.gen(function* () {
        const sessions = yield* svc
        const a = yield* request(codex, { capability: "openrouter-chat", ttlSeconds: 60 })
        const b = yield* request(claude, { capability: "openrouter-chat", ttlSeconds: 120 })
        const c = yield* request(codex, { capability: "ssh-platform-host" })
        yield* TestClock.adjust("90 seconds")
        assert.strictEqual(yield* sessions.sweep(100), 1)
        assert.strictEqual(yield* sessions.sweep(100), 0)
        yield* TestClock.adjust("1 hour")
        assert.strictEqual(yield* sessions.sweep(100), 2)
        for (const s of [a, b, c]) {
          const expired = yield* auditEvents((e) => e.session === s.id && e.action === "session.expired")
          assert.strictEqual(expired.length, 1)
        }
      }))

    test("list: operators only, by status or agent, expired ones moved out of the live lists", () =>
      Effect.gen(function* () {
        const sessions = yield* svc
        const a = yield* request(codex, { capability: "openrouter-chat", ttlSeconds: 60 })
        const b = yield* request(codex, { capability: "ssh-platform-host" })
        const c = yield* request(claude, { capability: "openrouter-chat" })
        assert.strictEqual((yield* Effect.flip(sessions.list(codex, { status: "active" })))._tag, "Forbidden")
        assert.strictEqual((yield* Effect.flip(sessions.list(alice, {})))._tag, "BadRequest")
        assert.strictEqual(
          (yield* Effect.flip(sessions.list(alice, { status: "active", limit: 0 })))._tag,
          "BadRequest"
        )
        const ids = (p: Sessions.ListPage) => p.sessions.map((s) => s.id).sort()
        assert.deepStrictEqual(ids(yield* sessions.list(alice, { status: "active" })), [a.id, c.id].sort())
        assert.deepStrictEqual(ids(yield* sessions.list(alice, { status: "pending_approval" })), [b.id])
        assert.deepStrictEqual(ids(yield* sessions.list(alice, { agent: "codex" })), [a.id, b.id].sort())
        assert.deepStrictEqual(ids(yield* sessions.list(alice, { agent: "codex", status: "active" })), [a.id])
        yield* TestClock.adjust("61 seconds")
        assert.deepStrictEqual(ids(yield* sessions.list(alice, { status: "active" })), [c.id])
        assert.deepStrictEqual(ids(yield* sessions.list(alice, { status: "expired" })), [a.id])
        const byAgent = yield* sessions.list(alice, { agent: "codex" })
        assert.deepStrictEqual(byAgent.sessions.map((s) => s.status).sort(), ["expired", "pending_approval"])
        const bad = yield* Effect.flip(sessions.list(alice, { status: "active", cursor: "garbage" }))
        assert.strictEqual(bad._tag, "InvalidCursor")
      }))

    test(
      "requests per minute per agent are limited (fixed window) → RateLimited",
      () =>
        Effect.gen(function* () {
          for (let i = 0; i < 3; i++) yield* request(codex, { capability: "openrouter-chat" })
          const error = yield* Effect.flip(request(codex, { capability: "openrouter-chat" }))
          assert.strictEqual(error._tag, "RateLimited")
          assert.strictEqual(error._tag === "RateLimited" && error.limit, "requests-per-minute")
          // another agent is not affected; the next minute opens a new window
          yield* request(claude, { capability: "openrouter-chat" })
          yield* TestClock.adjust("1 minute")
          yield* request(codex, { capability: "openrouter-chat" })
          const limited = yield* auditEvents((e) => e.reason === "rate-limited:requests-per-minute")
          assert.strictEqual(limited.length, 1)
        }),
      { requestsPerMinute: 3, maxLiveSessionsPerAgent: 100 }
    )

    test(
      "live sessions per agent are limited → RateLimited until one ends",
      () =>
        Effect.gen(function* () {
          const sessions = yield* svc
          const first = yield* request(codex, { capability: "openrouter-chat" })
          yield* request(codex, { capability: "ssh-platform-host" })
          const error = yield* Effect.flip(request(codex, { capability: "openrouter-chat" }))
          assert.strictEqual(error._tag === "RateLimited" && error.limit, "active-sessions")
          yield* sessions.revoke(codex, first.id)
          yield* request(codex, { capability: "openrouter-chat" })
        }),
      { maxLiveSessionsPerAgent: 2 }
    )

    test("50 concurrent approve/deny on a pending session: exactly one winner, audit agrees", () =>
      Effect.gen(function* () {
        const sessions = yield* svc
        const s = yield* request(codex, { capability: "ssh-platform-host" })
        const ops = [alice, bob, carol]
        const results = yield* Effect.forEach(
          Array.from({ length: 50 }, (_, i) => i),
          (i) => {
            const op = ops[i % 3]!
            return Effect.either(i % 2 === 0 ? sessions.approve(op, s.id) : sessions.deny(op, s.id))
          },
          { concurrency: "unbounded" }
        )
        const winners = results.filter(Either.isRight)
        assert.strictEqual(winners.length, 1)
        for (const r of results) {
          if (Either.isLeft(r)) assert.include(["Conflict", "DuplicateApprover"], r.left._tag)
        }
        const final = yield* sessions.get(alice, s.id)
        const decisions = yield* auditEvents(
          (e) =>
            e.session === s.id &&
            e.outcome === "success" &&
            (e.action === "session.approved" || e.action === "session.denied")
        )
        assert.strictEqual(decisions.length, 1)
        assert.strictEqual(
          decisions[0]?.action,
          final.status === "active" ? "session.approved" : "session.denied"
        )
        assert.strictEqual(final.version, 2)
      }))

    test("50 concurrent revocations of an active session: exactly one winner, audit agrees", () =>
      Effect.gen(function* () {
        const sessions = yield* svc
        const s = yield* request(codex, { capability: "openrouter-chat" })
        const who = [codex, alice, bob]
        const results = yield* Effect.forEach(
          Array.from({ length: 50 }, (_, i) => i),
          (i) => Effect.either(sessions.revoke(who[i % 3]!, s.id)),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(results.filter(Either.isRight).length, 1)
        assert.isTrue(results.every((r) => Either.isRight(r) || r.left._tag === "Conflict"))
        const revoked = yield* auditEvents((e) => e.session === s.id && e.action === "session.revoked")
        assert.strictEqual(revoked.length, 1)
      }))

    test("50 concurrent approve/deny/revoke pinned to the version they saw: exactly one winner, audit agrees", () =>
      Effect.gen(function* () {
        const sessions = yield* svc
        const s = yield* request(codex, { capability: "ssh-platform-host" })
        const seen = (yield* sessions.get(alice, s.id)).version
        const results = yield* Effect.forEach(
          Array.from({ length: 50 }, (_, i) => i),
          (i) => {
            const input = { expectedVersion: seen, reason: `call ${i}` }
            switch (i % 3) {
              case 0:
                return Effect.either(sessions.approve([alice, bob, carol][i % 3]!, s.id, input))
              case 1:
                return Effect.either(sessions.deny([bob, carol, alice][i % 3]!, s.id, input))
              default:
                return Effect.either(sessions.revoke([carol, codex][i % 2]!, s.id, input))
            }
          },
          { concurrency: "unbounded" }
        )
        const winners = results.filter(Either.isRight)
        assert.strictEqual(winners.length, 1)
        assert.isTrue(results.every((r) => Either.isRight(r) || r.left._tag === "Conflict"))
        const transitions = yield* auditEvents(
          (e) =>
            e.session === s.id &&
            e.outcome === "success" &&
            ["session.approved", "session.denied", "session.revoked"].includes(e.action)
        )
        assert.strictEqual(transitions.length, 1)
        assert.strictEqual((yield* sessions.get(alice, s.id)).version, seen + 1)
      }))

    test("an unavailable audit log fails the request closed: no session is stored", () =>
      Effect.gen(function* () {
        const sink = yield* AuditSink.MemorySink
        yield* sink.setMode("fail")
        const error = yield* Effect.flip(request(codex, { capability: "openrouter-chat" }))
        assert.strictEqual(error._tag, "Unavailable")
        yield* sink.setMode("ok")
        const sessions = yield* svc
        const page = yield* sessions.list(alice, { agent: "codex" })
        assert.strictEqual(page.sessions.length, 0)
      }))

    test("a session item edited in the store is rejected as Tampered", () =>
      Effect.gen(function* () {
        const sessions = yield* svc
        const s = yield* request(codex, { capability: "ssh-platform-host" })
        const store = yield* Store.CoordinationStore
        const item = Option.getOrThrow(yield* store.get(SessionRepository.pk(s.id), "session"))
        yield* store.put(
          { ...item, data: { ...item.data, status: "active", requiredApprovals: 0 } },
          Store.atVersion(item.version)
        )
        assert.strictEqual((yield* Effect.flip(sessions.get(codex, s.id)))._tag, "Tampered")
        assert.strictEqual((yield* Effect.flip(sessions.revoke(codex, s.id)))._tag, "Tampered")
        assert.strictEqual((yield* Effect.flip(sessions.approve(alice, s.id)))._tag, "Tampered")
      }))
  })
