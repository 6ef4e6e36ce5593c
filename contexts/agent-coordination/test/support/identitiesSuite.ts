import { AuditHmac } from "@aap/audit"
import { assert, layer } from "@effect/vitest"
import { DateTime, Effect, type Layer, Option, Redacted, TestClock } from "effect"
import * as Store from "../../src/CoordinationStore.js"
import * as Identities from "../../src/Identities.js"
import * as IdentityRepository from "../../src/IdentityRepository.js"
import * as Token from "../../src/Token.js"
import { alice, codex, services } from "./fixtures.js"
import { auditEvents } from "./sessionsSuite.js"

const ids = Identities.Identities

/** Every audit event as JSON, to prove a secret never reached the log. */
const auditText = Effect.map(auditEvents(), (events) => JSON.stringify(events))

/** The Identities service contract over one store adapter. */
export const suite = <R>(
  name: string,
  base: Layer.Layer<R, unknown>,
  store: Layer.Layer<Store.CoordinationStore, unknown, R>
) =>
  layer(base, { timeout: "60 seconds" })(`Identities: ${name}`, (it) => {
    const test = <A, E>(
      title: string,
      body: () => Effect.Effect<A, E, Layer.Layer.Success<ReturnType<typeof services>>>
    ) => it.effect(title, () => body().pipe(Effect.provide(services(store))))

    test("bootstrap creates one operator token, once", () =>
      Effect.gen(function* () {
        const identities = yield* ids
        const token = Option.getOrThrow(yield* identities.bootstrapOperator("alice"))
        assert.match(Redacted.value(token), /^aap_op_/)
        assert.isTrue(Option.isNone(yield* identities.bootstrapOperator("alice")))
        assert.deepStrictEqual(yield* identities.authenticate(token), { _tag: "operator", id: "alice" })
        const issued = yield* auditEvents((e) => e.action === "token.issued")
        assert.strictEqual(issued.length, 1)
        assert.strictEqual(issued[0]?.details.bootstrap, true)
        assert.notInclude(yield* auditText, Redacted.value(token))
      }))

    test("bootstrap recovers from a marker whose token was never written", () =>
      Effect.gen(function* () {
        const repo = yield* IdentityRepository.IdentityRepository
        const now = DateTime.unsafeMake(yield* TestClock.currentTimeMillis)
        // a crash between writing the marker and the token leaves this behind
        yield* repo.saveBootstrap(
          { operator: "alice", tokenHash: "f".repeat(64), createdAt: now, version: 1 },
          undefined
        )
        const identities = yield* ids
        const token = yield* identities.bootstrapOperator("alice")
        assert.isTrue(Option.isSome(token))
        assert.isTrue(Option.isNone(yield* identities.bootstrapOperator("alice")))
      }))

    test("operators issue agent tokens; agents resolve to their catalog wallet", () =>
      Effect.gen(function* () {
        const identities = yield* ids
        const minted = yield* identities.issueToken(alice, { type: "agent", id: "codex" })
        assert.match(Redacted.value(minted.token), /^aap_agt_/)
        assert.deepStrictEqual(yield* identities.authenticate(minted.token), {
          _tag: "agent",
          id: "codex",
          wallet: "codex"
        })
        assert.strictEqual(
          (yield* Effect.flip(identities.issueToken(codex, { type: "agent", id: "codex" })))._tag,
          "Forbidden"
        )
        assert.strictEqual(
          (yield* Effect.flip(identities.issueToken(alice, { type: "agent", id: "ghost" })))._tag,
          "NotFound"
        )
        const listed = yield* identities.listTokens(alice, { type: "agent", id: "codex" })
        assert.deepStrictEqual(
          listed.map((t) => t.fingerprint),
          [minted.fingerprint]
        )
        assert.notInclude(JSON.stringify(listed), Redacted.value(minted.token))
      }))

    test("failed authentication is Unauthorized and audited with the HMAC of the token, never the token", () =>
      Effect.gen(function* () {
        const identities = yield* ids
        const canaries = [
          Redacted.make("not-a-token-CANARY-1"),
          Token.fromBytes("agent", new Uint8Array(32).fill(9)), // well formed, never issued
          Redacted.make(
            `${Redacted.value(Token.fromBytes("operator", new Uint8Array(32).fill(3))).slice(0, -1)}Q`
          )
        ]
        for (const token of canaries) {
          const error = yield* Effect.flip(identities.authenticate(token))
          assert.strictEqual(error._tag, "Unauthorized")
          assert.notInclude(error.message, Redacted.value(token))
        }
        const failed = yield* auditEvents((e) => e.action === "auth.failed")
        assert.deepStrictEqual(
          failed.map((e) => e.reason),
          ["malformed", "unknown", "malformed"]
        )
        for (const [i, token] of canaries.entries()) {
          const expected = yield* AuditHmac.compute(token)
          assert.strictEqual(failed[i]?.hmac?.token, expected)
        }
        const text = yield* auditText
        for (const token of canaries) assert.notInclude(text, Redacted.value(token))
      }))

    test("revoked tokens stop authenticating (by operator or by the holder)", () =>
      Effect.gen(function* () {
        const identities = yield* ids
        const a = yield* identities.issueToken(alice, { type: "agent", id: "codex" })
        const b = yield* identities.issueToken(alice, { type: "agent", id: "codex" })
        assert.strictEqual(
          yield* identities.revokeTokens(alice, { type: "agent", id: "codex" }, a.fingerprint),
          1
        )
        assert.strictEqual((yield* Effect.flip(identities.authenticate(a.token)))._tag, "Unauthorized")
        yield* identities.authenticate(b.token)
        yield* identities.revokeToken(b.token)
        assert.strictEqual((yield* Effect.flip(identities.authenticate(b.token)))._tag, "Unauthorized")
        assert.strictEqual(yield* identities.revokeTokens(alice, { type: "agent", id: "codex" }), 0)
        assert.strictEqual(
          (yield* Effect.flip(identities.revokeTokens(codex, { type: "agent", id: "codex" })))._tag,
          "Forbidden"
        )
        const reasons = (yield* auditEvents((e) => e.action === "auth.failed")).map((e) => e.reason)
        assert.deepStrictEqual(reasons, ["revoked", "revoked"])
      }))

    test("a token item edited in the store authenticates nobody", () =>
      Effect.gen(function* () {
        const identities = yield* ids
        const minted = yield* identities.issueToken(alice, { type: "agent", id: "codex" })
        const store = yield* Store.CoordinationStore
        const pk = IdentityRepository.tokenPk(minted.hash)
        const item = Option.getOrThrow(yield* store.get(pk, "token"))
        yield* store.put(
          { ...item, data: { ...item.data, principal: "claude" } },
          Store.atVersion(item.version)
        )
        assert.strictEqual((yield* Effect.flip(identities.authenticate(minted.token)))._tag, "Unauthorized")
        const [failed] = yield* auditEvents((e) => e.action === "auth.failed")
        assert.strictEqual(failed?.reason, "tampered")
      }))

    test("link codes: single use, 10 minutes; reused, expired and wrong codes fail alike", () =>
      Effect.gen(function* () {
        const identities = yield* ids
        const issued = yield* identities.issueLinkCode(alice, "codex")
        assert.strictEqual(
          issued.expiresAt.epochMillis - (yield* TestClock.currentTimeMillis),
          10 * 60 * 1000
        )
        const enrolled = yield* identities.redeemLinkCode(issued.code)
        assert.strictEqual(enrolled.agent, "codex")
        assert.deepStrictEqual(yield* identities.authenticate(enrolled.token), {
          _tag: "agent",
          id: "codex",
          wallet: "codex"
        })
        const reused = yield* Effect.flip(identities.redeemLinkCode(issued.code))
        const late = yield* identities.issueLinkCode(alice, "codex")
        yield* TestClock.adjust("10 minutes")
        const expired = yield* Effect.flip(identities.redeemLinkCode(late.code))
        const wrong = yield* Effect.flip(identities.redeemLinkCode(Redacted.make("AAAA-BBBB-CCCC-DDDD")))
        const garbage = yield* Effect.flip(identities.redeemLinkCode(Redacted.make("hello")))
        for (const e of [reused, expired, wrong, garbage]) {
          assert.strictEqual(e._tag, "Unauthorized")
          assert.strictEqual(e.message, reused.message)
        }
        const reasons = (yield* auditEvents((e) => e.action === "auth.failed")).map((e) => e.reason)
        assert.deepStrictEqual(reasons, ["already-redeemed", "expired", "unknown", "malformed"])
        const text = yield* auditText
        for (const secret of [issued.code, late.code, enrolled.token])
          assert.notInclude(text, Redacted.value(secret))
        assert.strictEqual((yield* Effect.flip(identities.issueLinkCode(codex, "codex")))._tag, "Forbidden")
        assert.strictEqual((yield* Effect.flip(identities.issueLinkCode(alice, "ghost")))._tag, "NotFound")
      }))

    test("concurrent redemptions of one link code: exactly one token", () =>
      Effect.gen(function* () {
        const identities = yield* ids
        const issued = yield* identities.issueLinkCode(alice, "codex")
        const results = yield* Effect.forEach(
          Array.from({ length: 20 }, () => 0),
          () => Effect.either(identities.redeemLinkCode(issued.code)),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(results.filter((r) => r._tag === "Right").length, 1)
      }))
  })
