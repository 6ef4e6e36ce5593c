import { assert, describe, it } from "@effect/vitest"
import { DateTime, Either, FastCheck } from "effect"
import * as Session from "../src/Session.js"

const t0 = DateTime.unsafeMake("2026-11-22T10:00:00.000Z")
const at = (seconds: number) => DateTime.add(t0, { seconds })

const base = (requiredApprovals: number) =>
  Session.create(
    {
      id: "ses_00000000000000000000000000",
      agent: "codex",
      wallet: "codex",
      capability: "cap",
      tier: requiredApprovals > 0 ? "high" : "low",
      ttlSeconds: 600,
      breakGlass: false,
      requiredApprovals,
      approvalWindowSeconds: 300
    },
    t0
  )

const pending = base(1).session
const active = base(0).session
const denied = Either.getOrThrow(Session.deny(pending, "alice", "no", at(1))).session
const revoked = Either.getOrThrow(
  Session.revoke(active, { type: "agent", id: "codex" }, undefined, at(1))
).session
const expired = Either.getOrThrow(Session.expire(active, at(600))).session
const operator = { type: "operator" as const, id: "alice" }

type Op = "approve" | "deny" | "revoke" | "expire"
const run = (op: Op, s: Session.Session, when: DateTime.Utc) => {
  switch (op) {
    case "approve":
      return Session.approve(s, "bob", undefined, when)
    case "deny":
      return Session.deny(s, "bob", undefined, when)
    case "revoke":
      return Session.revoke(s, operator, undefined, when)
    case "expire":
      return Session.expire(s, when)
  }
}

describe("Session state machine", () => {
  it("creates low/medium sessions active and high/critical pending", () => {
    assert.strictEqual(active.status, "active")
    assert.deepStrictEqual(base(0).actions, ["session.requested", "session.activated"])
    assert.strictEqual(DateTime.formatIso(active.expiresAt), "2026-11-22T10:10:00.000Z")
    assert.strictEqual(pending.status, "pending_approval")
    assert.deepStrictEqual(base(1).actions, ["session.requested"])
    // the approval window, not the TTL, bounds a pending session
    assert.strictEqual(DateTime.formatIso(pending.expiresAt), "2026-11-22T10:05:00.000Z")
  })

  // Allowed transitions: the only ones that succeed from each state (before any deadline).
  const allowed: Record<Session.Status, ReadonlyArray<Op>> = {
    pending_approval: ["approve", "deny"],
    active: ["revoke"],
    denied: [],
    revoked: [],
    expired: []
  }
  const states: Record<Session.Status, Session.Session> = {
    pending_approval: pending,
    active,
    denied,
    revoked,
    expired
  }

  for (const [status, s] of Object.entries(states) as Array<[Session.Status, Session.Session]>) {
    for (const op of ["approve", "deny", "revoke"] as const) {
      const ok = allowed[status].includes(op)
      it(`${op} from ${status}: ${ok ? "allowed" : "forbidden"}`, () => {
        const result = run(op, s, at(2))
        if (ok) {
          assert.isTrue(Either.isRight(result))
          const next = Either.getOrThrow(result).session
          assert.strictEqual(next.version, s.version + 1)
        } else {
          assert.isTrue(Either.isLeft(result))
          const error = Either.getLeft(result).pipe((o) => (o._tag === "Some" ? o.value : undefined))
          assert.strictEqual(error?._tag, status === "expired" ? "Expired" : "Conflict")
        }
      })
    }
    it(`expire from ${status} before the deadline: forbidden`, () => {
      assert.isTrue(Either.isLeft(Session.expire(s, at(2))))
    })
  }

  it("a pending session expires at the end of its approval window; then every decision is Expired", () => {
    assert.isTrue(Either.isLeft(Session.expire(pending, at(299))))
    const e = Either.getOrThrow(Session.expire(pending, at(300)))
    assert.strictEqual(e.session.status, "expired")
    assert.deepStrictEqual(e.actions, ["session.expired"])
    assert.strictEqual(DateTime.formatIso(e.session.ended!.at), "2026-11-22T10:05:00.000Z")
    for (const op of ["approve", "deny", "revoke"] as const) {
      const r = run(op, pending, at(300))
      assert.strictEqual(Either.isLeft(r) && r.left._tag, "Expired")
    }
  })

  it("an active session expires at expiresAt; view() shows it as expired without a write", () => {
    assert.strictEqual(Session.view(active, at(599)).status, "active")
    assert.strictEqual(Session.view(active, at(600)).status, "expired")
    assert.strictEqual(Session.view(denied, at(10_000)).status, "denied")
    const r = Session.revoke(active, operator, undefined, at(600))
    assert.strictEqual(Either.isLeft(r) && r.left._tag, "Expired")
  })

  it("approval activates with the full TTL from the approval time", () => {
    const t = Either.getOrThrow(Session.approve(pending, "alice", "ok", at(120)))
    assert.strictEqual(t.session.status, "active")
    assert.deepStrictEqual(t.actions, ["session.approved", "session.activated"])
    assert.strictEqual(DateTime.formatIso(t.session.expiresAt), "2026-11-22T10:12:00.000Z")
    assert.deepStrictEqual(
      t.session.approvals.map((a) => [a.operator, a.reason, DateTime.formatIso(a.at)]),
      [["alice", "ok", "2026-11-22T10:02:00.000Z"]]
    )
  })

  it("n approvals must come from n distinct operators", () => {
    const two = base(2).session
    const first = Either.getOrThrow(Session.approve(two, "alice", undefined, at(1)))
    assert.strictEqual(first.session.status, "pending_approval")
    assert.deepStrictEqual(first.actions, ["session.approved"])
    const again = Session.approve(first.session, "alice", undefined, at(2))
    assert.strictEqual(Either.isLeft(again) && again.left._tag, "DuplicateApprover")
    const second = Either.getOrThrow(Session.approve(first.session, "bob", undefined, at(3)))
    assert.strictEqual(second.session.status, "active")
    assert.deepStrictEqual(
      second.session.approvals.map((a) => a.operator),
      ["alice", "bob"]
    )
  })
})

describe("Session state machine (property)", () => {
  const op = FastCheck.record({
    kind: FastCheck.constantFrom("approve", "deny", "revoke", "expire"),
    operator: FastCheck.constantFrom("alice", "bob", "carol"),
    advance: FastCheck.integer({ min: 0, max: 400 })
  })

  it("any sequence: terminal states absorb, versions grow by one per success, approvals stay distinct", () => {
    FastCheck.assert(
      FastCheck.property(
        FastCheck.integer({ min: 0, max: 3 }),
        FastCheck.array(op, { maxLength: 12 }),
        (n, ops) => {
          let s = base(n).session
          let when = t0
          for (const o of ops) {
            when = DateTime.add(when, { seconds: o.advance })
            const before = s
            const r =
              o.kind === "approve"
                ? Session.approve(s, o.operator, undefined, when)
                : o.kind === "deny"
                  ? Session.deny(s, o.operator, undefined, when)
                  : o.kind === "revoke"
                    ? Session.revoke(s, operator, undefined, when)
                    : Session.expire(s, when)
            if (Either.isRight(r)) {
              s = r.right.session
              if (s.version !== before.version + 1) return false
              if (Session.isTerminal(before)) return false
            } else if (
              Session.isTerminal(before) &&
              r.left._tag !== "Conflict" &&
              r.left._tag !== "Expired"
            ) {
              return false
            }
            if (new Set(s.approvals.map((a) => a.operator)).size !== s.approvals.length) return false
            if (s.status === "active" && s.approvals.length < s.requiredApprovals) return false
            if (s.status === "pending_approval" && s.approvals.length >= s.requiredApprovals) return false
          }
          return true
        }
      )
    )
  })
})
