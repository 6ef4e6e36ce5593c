/**
 * The embedded broker over a real socket with the real embedded store (dynalite on disk in a
 * temporary AAP_HOME), the local keyring and the JSONL audit log.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { assert, describe, it, layer } from "@effect/vitest"
import { Context, Duration, Effect, Layer } from "effect"
import * as Broker from "../src/Broker.js"
import * as BrokerConfig from "../src/BrokerConfig.js"
import { call, catalogFile, post, tempHome } from "./support.js"

const home = tempHome()
const config = BrokerConfig.make({
  home,
  listen: { host: "127.0.0.1", port: 0 },
  catalogPath: catalogFile,
  maxBodyBytes: 4096,
  requestTimeout: Duration.seconds(10),
  logLevel: "none"
})

const enrol = (url: string, operator: string, agent: string) =>
  Effect.gen(function* () {
    const issued = yield* post(url, `/v1/agents/${agent}/link-codes`, operator)
    assert.strictEqual(issued.status, 201, issued.text)
    const code = issued.json.code as string
    const redeemed = yield* post(url, "/v1/link-codes/redeem", undefined, { code })
    assert.strictEqual(redeemed.status, 200, redeemed.text)
    assert.strictEqual(redeemed.json.agent, agent)
    const again = yield* post(url, "/v1/link-codes/redeem", undefined, { code })
    assert.strictEqual(again.status, 401)
    return redeemed.json.token as string
  })

describe("embedded broker", () => {
  layer(Broker.layer(config), { timeout: 60_000, excludeTestServices: true })((it) => {
    it.effect("first start: operator token written 0600 under AAP_HOME, keyring 0600, ready", () =>
      Effect.gen(function* () {
        const boot = yield* Broker.BrokerBootstrap
        const { url } = yield* Broker.BrokerInfo
        assert.isTrue(boot.created)
        assert.strictEqual(boot.tokenFile, Path.join(home, "operator.token"))
        assert.strictEqual(Fs.statSync(boot.tokenFile).mode & 0o777, 0o600)
        assert.strictEqual(Fs.statSync(Path.join(home, "keys", "keyring.json")).mode & 0o777, 0o600)
        assert.match(Fs.readFileSync(boot.tokenFile, "utf8"), /^aap_op_/)
        const ready = yield* call(url, "GET", "/readyz")
        assert.strictEqual(ready.status, 200, ready.text)
        assert.deepStrictEqual(ready.json.checks, { store: "ok", keys: "ok", audit: "ok" })
      })
    )

    it.effect("sessions: low granted, high pending → approved, revoke, auth matrix, 404 for others", () =>
      Effect.gen(function* () {
        const { url } = yield* Broker.BrokerInfo
        const boot = yield* Broker.BrokerBootstrap
        const op = Fs.readFileSync(boot.tokenFile, "utf8").trim()
        const codex = yield* enrol(url, op, "codex")
        const claude = yield* enrol(url, op, "claude")

        const low = yield* post(url, "/v1/sessions", codex, { capability: "openrouter-chat" })
        assert.strictEqual(low.status, 201, low.text)
        assert.strictEqual(low.json.status, "active")
        const high = yield* post(url, "/v1/sessions", codex, { capability: "ssh-platform-host" })
        assert.strictEqual(high.status, 201)
        assert.strictEqual(high.json.status, "pending_approval")
        const id = high.json.id as string

        // no token, bad token, agent on an operator route, another agent's session
        assert.strictEqual((yield* call(url, "GET", `/v1/sessions/${id}`)).status, 401)
        assert.strictEqual(
          (yield* call(url, "GET", `/v1/sessions/${id}`, { token: "aap_agt_nope" })).status,
          401
        )
        const self = yield* post(url, `/v1/sessions/${id}/approve`, codex, {})
        assert.strictEqual(self.status, 403, self.text)
        assert.strictEqual((yield* call(url, "GET", "/v1/audit", { token: codex })).status, 403)
        assert.strictEqual((yield* call(url, "GET", "/v1/sessions", { token: codex })).status, 403)
        const foreign = yield* call(url, "GET", `/v1/sessions/${id}`, { token: claude })
        assert.strictEqual(foreign.status, 404)
        const missing = yield* call(url, "GET", "/v1/sessions/ses_00000000000000000000000000", {
          token: claude
        })
        assert.strictEqual(missing.status, 404)
        assert.strictEqual(foreign.json._tag, missing.json._tag)
        assert.strictEqual((yield* post(url, `/v1/sessions/${id}/revoke`, claude, {})).status, 404)

        const pending = yield* call(url, "GET", "/v1/sessions?status=pending_approval", { token: op })
        assert.strictEqual(pending.status, 200)
        assert.include(
          (pending.json.sessions as Array<{ id: string }>).map((s) => s.id),
          id
        )
        const approved = yield* post(url, `/v1/sessions/${id}/approve`, op, { reason: "deploy" })
        assert.strictEqual(approved.status, 200, approved.text)
        assert.strictEqual(approved.json.status, "active")
        const twice = yield* post(url, `/v1/sessions/${id}/approve`, op, { reason: "again" })
        assert.strictEqual(twice.status, 409, twice.text)

        const revoked = yield* post(url, `/v1/sessions/${id}/revoke`, codex, {})
        assert.strictEqual(revoked.status, 200)
        assert.strictEqual(revoked.json.status, "revoked")
        const again = yield* post(url, `/v1/sessions/${id}/revoke`, op, {})
        assert.strictEqual(again.status, 409)

        const denied = yield* post(url, "/v1/sessions", codex, { capability: "ssh-platform-host" })
        const deny = yield* post(url, `/v1/sessions/${denied.json.id as string}/deny`, op, { reason: "no" })
        assert.strictEqual(deny.status, 200)
        assert.strictEqual(deny.json.status, "denied")

        const notAllowed = yield* post(url, "/v1/sessions", claude, { capability: "ssh-platform-host" })
        assert.strictEqual(notAllowed.status, 403, notAllowed.text)
        assert.strictEqual(notAllowed.json._tag, "RequestDenied")
        assert.isString(notAllowed.json.message)
      })
    )

    it.effect("malformed JSON, wrong types and oversized bodies", () =>
      Effect.gen(function* () {
        const { url } = yield* Broker.BrokerInfo
        const boot = yield* Broker.BrokerBootstrap
        const op = Fs.readFileSync(boot.tokenFile, "utf8").trim()
        const agent = yield* enrol(url, op, "ci-bot")
        const malformed = yield* call(url, "POST", "/v1/sessions", { token: agent, body: "{not json" })
        assert.strictEqual(malformed.status, 400)
        assert.strictEqual(malformed.json._tag, "HttpApiDecodeError")
        assert.isString(malformed.json.message)
        const wrong = yield* post(url, "/v1/sessions", agent, { capability: 42, ttlSeconds: "soon" })
        assert.strictEqual(wrong.status, 400)
        assert.strictEqual(wrong.json._tag, "HttpApiDecodeError")
        assert.include(wrong.json.message as string, "capability")
        const badPath = yield* call(url, "GET", "/v1/sessions/not-a-session-id", { token: op })
        assert.strictEqual(badPath.status, 400)
        const big = yield* post(url, "/v1/sessions", agent, { capability: "x".repeat(10_000) })
        assert.strictEqual(big.status, 413)
        assert.strictEqual(big.json._tag, "PayloadTooLarge")
        // No content-length (chunked): the limit is enforced while reading. The platform then
        // destroys the request stream, so the client sees a 413 or a closed connection — never
        // a processed request.
        const chunked = yield* Effect.promise(async () => {
          const body = new ReadableStream({
            start(controller) {
              controller.enqueue(new TextEncoder().encode(`{"capability":"${"y".repeat(8000)}"}`))
              controller.close()
            }
          })
          try {
            const res = await fetch(`${url}/v1/sessions`, {
              method: "POST",
              headers: {
                authorization: `Bearer ${agent}`,
                "content-type": "application/json",
                connection: "close"
              },
              body,
              duplex: "half"
            } as RequestInit)
            return { status: res.status, tag: ((await res.json()) as Record<string, unknown>)._tag }
          } catch {
            return { status: 0, tag: "connection closed" }
          }
        })
        assert.include([413, 0], chunked.status)
        if (chunked.status === 413) assert.strictEqual(chunked.tag, "PayloadTooLarge")
        const mine = yield* call(url, "GET", "/v1/sessions?agent=ci-bot", { token: op })
        assert.strictEqual((mine.json.sessions as Array<unknown>).length, 0)
      })
    )

    it.effect(
      "tokens: an operator lists an agent's tokens and revokes one or all; revoked tokens authenticate nobody",
      () =>
        Effect.gen(function* () {
          const { url } = yield* Broker.BrokerInfo
          const boot = yield* Broker.BrokerBootstrap
          const op = Fs.readFileSync(boot.tokenFile, "utf8").trim()
          const first = yield* enrol(url, op, "ci-bot")
          const second = yield* enrol(url, op, "ci-bot")
          const request = (token: string) => post(url, "/v1/sessions", token, { capability: "forgejo-pr" })
          const listed = yield* call(url, "GET", "/v1/agents/ci-bot/tokens", { token: op })
          assert.strictEqual(listed.status, 200, listed.text)
          const tokens = listed.json.tokens as Array<{ fingerprint: string; revokedAt?: string }>
          assert.isAtLeast(tokens.length, 2)
          assert.notInclude(listed.text, first)
          assert.notInclude(listed.text, second)
          // an agent may not list or revoke tokens
          assert.strictEqual(
            (yield* call(url, "GET", "/v1/agents/ci-bot/tokens", { token: first })).status,
            403
          )
          assert.strictEqual((yield* post(url, "/v1/agents/ci-bot/tokens/revoke", first, {})).status, 403)
          assert.strictEqual((yield* post(url, "/v1/agents/ci-bot/tokens/revoke", undefined, {})).status, 401)
          // a malformed fingerprint is a 400 with its tag
          const bad = yield* post(url, "/v1/agents/ci-bot/tokens/revoke", op, { fingerprint: "nope" })
          assert.strictEqual(bad.status, 400, bad.text)
          assert.isString(bad.json._tag)
          // revoke the newest one by fingerprint: it stops working, the other still works
          const newest = tokens.at(-1)!.fingerprint
          const one = yield* post(url, "/v1/agents/ci-bot/tokens/revoke", op, { fingerprint: newest })
          assert.strictEqual(one.status, 200, one.text)
          assert.strictEqual(one.json.revoked, 1)
          assert.strictEqual((yield* request(second)).status, 401)
          const stillOk = yield* request(first)
          assert.notStrictEqual(stillOk.status, 401, stillOk.text)
          // revoke all: nothing left that authenticates; a second call revokes nothing
          const all = yield* post(url, "/v1/agents/ci-bot/tokens/revoke", op, {})
          assert.strictEqual(all.status, 200, all.text)
          assert.isAtLeast(all.json.revoked as number, 1)
          assert.strictEqual((yield* request(first)).status, 401)
          const none = yield* post(url, "/v1/agents/ci-bot/tokens/revoke", op, {})
          assert.strictEqual(none.json.revoked, 0)
          const after = yield* call(url, "GET", "/v1/agents/ci-bot/tokens", { token: op })
          for (const t of after.json.tokens as Array<{ revokedAt?: string }>) assert.isString(t.revokedAt)
          // revocations are audited, with fingerprints only
          const audit = yield* call(url, "GET", "/v1/audit?action=token.revoked&limit=100", { token: op })
          const revoked = audit.json.events as Array<{ details: { fingerprint: string } }>
          assert.isAtLeast(revoked.length, 2)
          assert.notInclude(audit.text, first)
          assert.notInclude(audit.text, second)
        })
    )

    it.effect("audit: events listed and the chain verifies", () =>
      Effect.gen(function* () {
        const { url } = yield* Broker.BrokerInfo
        const boot = yield* Broker.BrokerBootstrap
        const op = Fs.readFileSync(boot.tokenFile, "utf8").trim()
        const list = yield* call(url, "GET", "/v1/audit?limit=500", { token: op })
        assert.strictEqual(list.status, 200, list.text)
        const actions = (list.json.events as Array<{ action: string }>).map((e) => e.action)
        assert.include(actions, "session.requested")
        assert.include(actions, "session.approved")
        const verify = yield* call(url, "GET", "/v1/audit/verify", { token: op })
        assert.strictEqual(verify.status, 200)
        assert.strictEqual(verify.json.ok, true)
      })
    )
  })
})

describe("restart on the same AAP_HOME", () => {
  it.live(
    "sessions, tokens and the audit chain survive; no second operator token",
    () =>
      Effect.gen(function* () {
        const home2 = tempHome()
        const cfg = BrokerConfig.make({ ...config, home: home2 })
        const first = yield* Effect.scoped(
          Effect.gen(function* () {
            const ctx = yield* Layer.build(Broker.layer(cfg))
            const { url } = ctx.unsafeMap.get(Broker.BrokerInfo.key) as Broker.BrokerInfoShape
            const op = Fs.readFileSync(Path.join(home2, "operator.token"), "utf8").trim()
            const codex = yield* enrol(url, op, "codex")
            const s = yield* post(url, "/v1/sessions", codex, { capability: "openrouter-chat" })
            assert.strictEqual(s.status, 201)
            const events = yield* call(url, "GET", "/v1/audit?limit=1000", { token: op })
            return {
              op,
              codex,
              id: s.json.id as string,
              events: (events.json.events as Array<unknown>).length
            }
          })
        )
        const tokenBefore = Fs.readFileSync(Path.join(home2, "operator.token"), "utf8")
        yield* Effect.scoped(
          Effect.gen(function* () {
            const ctx = yield* Layer.build(Broker.layer(cfg))
            const boot = ctx.unsafeMap.get(Broker.BrokerBootstrap.key) as Broker.Bootstrap
            const { url } = ctx.unsafeMap.get(Broker.BrokerInfo.key) as Broker.BrokerInfoShape
            assert.isFalse(boot.created)
            assert.strictEqual(Fs.readFileSync(Path.join(home2, "operator.token"), "utf8"), tokenBefore)
            const s = yield* call(url, "GET", `/v1/sessions/${first.id}`, { token: first.codex })
            assert.strictEqual(s.status, 200, s.text)
            assert.strictEqual(s.json.status, "active")
            const byOp = yield* call(url, "GET", `/v1/sessions/${first.id}`, { token: first.op })
            assert.strictEqual(byOp.status, 200)
            const events = yield* call(url, "GET", "/v1/audit?limit=1000", { token: first.op })
            assert.isAtLeast((events.json.events as Array<unknown>).length, first.events)
            const verify = yield* call(url, "GET", "/v1/audit/verify", { token: first.op })
            assert.strictEqual(verify.json.ok, true, verify.text)
            assert.isAtLeast((verify.json.streams as Array<unknown>).length, 2)
          })
        )
      }),
    120_000
  )
})

describe("AAP_AUDIT_SINK=dynamodb", () => {
  it.live(
    "the audit chain goes to the audit table and verifies",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const home3 = tempHome()
          const ctx = yield* Layer.build(
            Broker.layer(BrokerConfig.make({ ...config, home: home3, auditSink: "dynamodb" }))
          )
          const { url } = Context.get(ctx, Broker.BrokerInfo)
          const op = Fs.readFileSync(Path.join(home3, "operator.token"), "utf8").trim()
          const codex = yield* enrol(url, op, "codex")
          assert.strictEqual(
            (yield* post(url, "/v1/sessions", codex, { capability: "openrouter-chat" })).status,
            201
          )
          const verify = yield* call(url, "GET", "/v1/audit/verify", { token: op })
          assert.strictEqual(verify.json.ok, true, verify.text)
          assert.isAtLeast((verify.json.streams as Array<{ records: number }>)[0]?.records ?? 0, 3)
          assert.deepStrictEqual(Fs.readdirSync(Path.join(home3, "audit")), [])
        })
      ),
    60_000
  )
})
