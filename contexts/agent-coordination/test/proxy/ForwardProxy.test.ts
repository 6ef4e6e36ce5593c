/**
 * `ForwardProxy` (ADR 0081): Proxy-Authorization parsing, CONNECT target parsing, the admission
 * of one CONNECT (token, session, catalog, the forward-mode opt-in, the target), `stillOpen`
 * and the blind-tunnel record; over memory adapters.
 */
import { AuditLog, AuditReader } from "@aap/audit"
import { Catalog } from "@aap/catalog"
import { SystemKeys } from "@aap/key-custody"
import { assert, describe, it } from "@effect/vitest"
import { DateTime, Effect, Exit, Layer, Redacted, Ref, Schema, TestClock } from "effect"
import * as CurrentCatalog from "../../src/CurrentCatalog.js"
import * as Ports from "../../src/delivery/Ports.js"
import { Unavailable } from "../../src/Errors.js"
import * as EgressProxy from "../../src/proxy/EgressProxy.js"
import * as ForwardProxy from "../../src/proxy/ForwardProxy.js"
import * as ProxyToken from "../../src/proxy/ProxyToken.js"

const T0 = 1_900_000_000_000

const capability = (id: string, connect: ReadonlyArray<string> | undefined) => ({
  id,
  tier: "low",
  agents: ["codex"],
  ttl: { default: "15m", max: "1h" },
  backing: {
    type: "bearer-token",
    secret: "llm/api-key",
    env: "LLM_API_KEY",
    proxy: {
      upstream: "https://llm.example.test/api",
      header: "Authorization",
      paths: ["/api/v1/*"],
      methods: ["GET"],
      ...(connect === undefined ? {} : { connect })
    }
  }
})

/** `null`: no `connect` (base-URL only). */
const catalogWith = (connect: ReadonlyArray<string> | null = ["Files.Example.test:8443"]) =>
  Schema.decodeUnknownSync(Catalog.Catalog)({
    schemaVersion: 1,
    agents: [{ id: "codex", wallet: "codex" }],
    operators: [{ id: "alice" }],
    capabilities: [capability("llm", connect ?? undefined), capability("base-url", undefined)]
  })

interface Harness {
  readonly sessions: Map<string, Ports.SessionView>
  readonly catalogRef: Ref.Ref<Catalog.Catalog>
  /** While true, every session read fails with `Unavailable(store)`. */
  readonly storeDown: { down: boolean }
}
class TestHarness extends Effect.Tag("test/ForwardHarness")<TestHarness, Harness>() {}

const makeLayer = (intercept: boolean, budgets: Partial<EgressProxy.ProxyConfigShape> = {}) => {
  const sessions = new Map<string, Ports.SessionView>()
  const catalogRef = Ref.unsafeMake(catalogWith())
  const storeDown = { down: false }
  const sessionsPort = Layer.effect(
    Ports.Sessions,
    Effect.map(Ports.Sessions, (inner) =>
      Ports.Sessions.of({
        get: (id) =>
          storeDown.down
            ? Effect.fail(new Unavailable({ message: "store down (test)", dependency: "store" }))
            : inner.get(id)
      })
    )
  ).pipe(Layer.provide(Ports.sessionsFromMap(sessions)))
  const base = Layer.mergeAll(
    sessionsPort,
    Ports.secretsMemory([["codex", "llm/api-key", "CANARY-forward-key"]]),
    CurrentCatalog.fromRef(catalogRef),
    AuditLog.layerMemory,
    SystemKeys.layerMemory,
    ForwardProxy.layerConfig({ intercept }),
    EgressProxy.layerConfig({ publicUrl: "http://broker.test:8787/", ...budgets }),
    Layer.succeed(TestHarness, { sessions, catalogRef, storeDown })
  )
  // the reverse proxy owns the session budgets that blind tunnels draw on
  return ForwardProxy.layer.pipe(Layer.provideMerge(EgressProxy.layer.pipe(Layer.provideMerge(base))))
}

const inLayer =
  (intercept = true, budgets: Partial<EgressProxy.ProxyConfigShape> = {}) =>
  <A, E, R>(test: Effect.Effect<A, E, R>) =>
    Effect.gen(function* () {
      yield* TestClock.setTime(T0)
      return yield* test.pipe(Effect.provide(makeLayer(intercept, budgets)))
    })

let n = 0
const addSession = (capabilityId = "llm", status: Ports.SessionStatus = "active", ttlSeconds = 900) =>
  Effect.gen(function* () {
    const h = yield* TestHarness
    const now = yield* DateTime.now
    const s: Ports.SessionView = {
      id: `ses_${String(++n).padStart(26, "0")}`,
      agent: "codex",
      wallet: "codex",
      capability: capabilityId,
      tier: "low",
      status,
      expiresAt: DateTime.add(now, { seconds: ttlSeconds })
    }
    h.sessions.set(s.id, s)
    const key = yield* (yield* SystemKeys.SystemKeys).hmacKey(ProxyToken.PURPOSE)
    return { session: s, token: Redacted.value(ProxyToken.mint(Redacted.value(key), s.id)) }
  })

const tagOf = <A, E extends { readonly _tag: string }>(exit: Exit.Exit<A, E>) =>
  Exit.match(exit, {
    onSuccess: () => "success",
    onFailure: (cause) => (cause._tag === "Fail" ? cause.error._tag : cause._tag)
  })

const records = Effect.flatMap(AuditReader.AuditReader, (r) =>
  r.query({ action: "proxy.request", limit: 1000 })
)

describe("ForwardProxy", () => {
  it("credentials: Basic <session>:<token> only", () => {
    const basic = (s: string) => `Basic ${Buffer.from(s).toString("base64")}`
    assert.deepStrictEqual(ForwardProxy.credentials(basic("ses_1:aap_pxy_x")), {
      session: "ses_1",
      token: "aap_pxy_x"
    })
    assert.deepStrictEqual(ForwardProxy.credentials([basic("ses_1:a%3Ab")]), {
      session: "ses_1",
      token: "a:b"
    })
    for (const bad of [
      undefined,
      "",
      "Bearer abc",
      basic("no-colon"),
      basic(":token"),
      "Basic !!!",
      basic("s:%E0%A4%A")
    ]) {
      assert.isUndefined(ForwardProxy.credentials(bad), String(bad))
    }
  })

  it("parseAuthority: host:port and [v6]:port, lower-cased; anything else undefined", () => {
    assert.deepStrictEqual(ForwardProxy.parseAuthority("API.Example.org:443"), {
      hostname: "api.example.org",
      port: 443,
      key: "api.example.org:443"
    })
    assert.deepStrictEqual(ForwardProxy.parseAuthority("[::1]:8443"), {
      hostname: "::1",
      port: 8443,
      key: "[::1]:8443"
    })
    for (const bad of [
      "example.org",
      "example.org:0",
      "example.org:65536",
      "a b:443",
      "http://x:443",
      "x:443/p",
      ""
    ]) {
      assert.isUndefined(ForwardProxy.parseAuthority(bad), bad)
    }
  })

  it.effect(
    "connect: the upstream host is intercepted, a connect entry is blind (case-insensitive), the rest refused and audited",
    () =>
      Effect.gen(function* () {
        const forward = yield* ForwardProxy.ForwardProxy
        const { session, token } = yield* addSession()
        const up = yield* forward.connect({ session: session.id, token, authority: "LLM.example.test:443" })
        assert.strictEqual(up.mode, "intercept")
        assert.strictEqual(up.target.key, "llm.example.test:443")
        assert.strictEqual(up.tokenFingerprint, ProxyToken.fingerprint(token))
        const blind = yield* forward.connect({
          session: session.id,
          token,
          authority: "files.example.TEST:8443"
        })
        assert.strictEqual(blind.mode, "blind")
        for (const authority of [
          "files.example.test:443",
          "llm.example.test:8443",
          "elsewhere.test:443",
          "nonsense"
        ]) {
          const exit = yield* Effect.exit(forward.connect({ session: session.id, token, authority }))
          assert.strictEqual(tagOf(exit), "HostNotAllowed", authority)
        }
        const denied = (yield* records).filter((r) => r.outcome === "denied")
        assert.deepStrictEqual(
          denied.map((r) => [r.reason, (r.details as Record<string, unknown>).upstream]),
          [
            ["host-not-allowed", "files.example.test:443"],
            ["host-not-allowed", "llm.example.test:8443"],
            ["host-not-allowed", "elsewhere.test:443"],
            ["host-not-allowed", "nonsense"]
          ]
        )
        assert.notInclude(JSON.stringify(yield* records), token)
      }).pipe(inLayer())
  )

  it.effect(
    "connect: without interception the upstream host is refused (interception-off), blind entries still work",
    () =>
      Effect.gen(function* () {
        const forward = yield* ForwardProxy.ForwardProxy
        const { session, token } = yield* addSession()
        const exit = yield* Effect.exit(
          forward.connect({ session: session.id, token, authority: "llm.example.test:443" })
        )
        assert.strictEqual(tagOf(exit), "HostNotAllowed")
        assert.strictEqual((yield* records)[0]?.reason, "interception-off")
        const blind = yield* forward.connect({
          session: session.id,
          token,
          authority: "files.example.test:8443"
        })
        assert.strictEqual(blind.mode, "blind")
      }).pipe(inLayer(false))
  )

  it.effect(
    "connect: bad tokens are Unauthorized without a record; inactive, expired, base-url-only sessions are refused and audited",
    () =>
      Effect.gen(function* () {
        const forward = yield* ForwardProxy.ForwardProxy
        const a = yield* addSession()
        const b = yield* addSession()
        const authority = "files.example.test:8443"
        for (const [session, token] of [
          [a.session.id, b.token],
          [a.session.id, `${a.token.slice(0, -1)}A`],
          ["ses_unknown", a.token],
          [a.session.id, ""]
        ] as const) {
          assert.strictEqual(
            tagOf(yield* Effect.exit(forward.connect({ session, token, authority }))),
            "Unauthorized"
          )
        }
        assert.deepStrictEqual(yield* records, [])

        const revoked = yield* addSession("llm", "revoked")
        assert.strictEqual(
          tagOf(
            yield* Effect.exit(
              forward.connect({ session: revoked.session.id, token: revoked.token, authority })
            )
          ),
          "SessionNotActive"
        )
        const baseUrl = yield* addSession("base-url")
        assert.strictEqual(
          tagOf(
            yield* Effect.exit(
              forward.connect({
                session: baseUrl.session.id,
                token: baseUrl.token,
                authority: "llm.example.test:443"
              })
            )
          ),
          "HostNotAllowed"
        )
        // Active but past its deadline (the worker has not expired it yet).
        const late = yield* addSession("llm", "active", -1)
        assert.strictEqual(
          tagOf(
            yield* Effect.exit(forward.connect({ session: late.session.id, token: late.token, authority }))
          ),
          "Expired"
        )
        assert.deepStrictEqual(
          (yield* records).map((r) => r.reason),
          ["not-active:revoked", "forward-off", "expired"]
        )
      }).pipe(inLayer())
  )

  it.effect(
    "blind tunnels draw on the session's budgets: one request each, their bytes, refusals audited",
    () =>
      Effect.gen(function* () {
        const forward = yield* ForwardProxy.ForwardProxy
        const { session, token } = yield* addSession()
        const open = () =>
          forward.connect({ session: session.id, token, authority: "files.example.test:8443" })
        const first = yield* open()
        assert.isDefined(first.budget)
        assert.isTrue(first.budget!.addBytes(600))
        assert.isFalse(first.budget!.addBytes(500), "the chunk that would cross 1,000 bytes is refused")
        // the byte budget is spent: the next tunnel is refused before it opens, and audited
        const spent = yield* Effect.exit(open())
        assert.strictEqual(tagOf(spent), "ProxyBudgetExceeded")
        // an intercepted tunnel takes no request of its own (its inner requests are budgeted)
        const up = yield* forward.connect({ session: session.id, token, authority: "llm.example.test:443" })
        assert.isUndefined(up.budget)
        // the request budget: a fresh session opens 2 tunnels, the third is refused
        const other = yield* addSession()
        const again = () =>
          forward.connect({
            session: other.session.id,
            token: other.token,
            authority: "files.example.test:8443"
          })
        yield* again()
        yield* again()
        assert.strictEqual(tagOf(yield* Effect.exit(again())), "ProxyBudgetExceeded")
        const reasons = (yield* records)
          .filter((e) => e.outcome === "denied")
          .map((e) => [e.session, e.reason])
        assert.deepStrictEqual(reasons, [
          [session.id, "budget:bytes"],
          [other.session.id, "budget:requests"]
        ])
      }).pipe(inLayer(true, { maxRequestsPerSession: 2, maxBytesPerSession: 1_000 }))
  )

  it.effect(
    "stillOpen: why a tunnel must close once the session is revoked or expired, or the catalog drops the target",
    () =>
      Effect.gen(function* () {
        const forward = yield* ForwardProxy.ForwardProxy
        const h = yield* TestHarness
        const { session, token } = yield* addSession()
        const blind = yield* forward.connect({
          session: session.id,
          token,
          authority: "files.example.test:8443"
        })
        const up = yield* forward.connect({ session: session.id, token, authority: "llm.example.test:443" })
        assert.strictEqual(yield* forward.stillOpen(blind), "open")
        assert.strictEqual(yield* forward.stillOpen(up), "open")
        // The catalog drops the blind target: the blind tunnel must close, the intercepted one not.
        yield* Ref.set(h.catalogRef, catalogWith([]))
        assert.strictEqual(yield* forward.stillOpen(blind), "catalog-changed")
        assert.strictEqual(yield* forward.stillOpen(up), "open")
        // The capability leaves the forward mode: every tunnel closes.
        yield* Ref.set(h.catalogRef, catalogWith(null))
        assert.strictEqual(yield* forward.stillOpen(up), "catalog-changed")
        yield* Ref.set(h.catalogRef, catalogWith())
        assert.strictEqual(yield* forward.stillOpen(up), "open")
        h.sessions.set(session.id, { ...session, status: "revoked" })
        assert.strictEqual(yield* forward.stillOpen(up), "session-ended")
        h.sessions.set(session.id, session)
        assert.strictEqual(yield* forward.stillOpen(up), "open")
        // Still marked active, but past its deadline.
        h.sessions.set(session.id, { ...session, expiresAt: DateTime.unsafeMake(T0 - 1) })
        assert.strictEqual(yield* forward.stillOpen(up), "session-expired")
        h.sessions.delete(session.id)
        assert.strictEqual(yield* forward.stillOpen(up), "session-ended")
      }).pipe(inLayer())
  )

  it.effect("stillOpen: fails (does not answer false) when the session cannot be read", () =>
    Effect.gen(function* () {
      const forward = yield* ForwardProxy.ForwardProxy
      const h = yield* TestHarness
      const { session, token } = yield* addSession()
      const up = yield* forward.connect({ session: session.id, token, authority: "llm.example.test:443" })
      h.storeDown.down = true
      assert.strictEqual(tagOf(yield* Effect.exit(forward.stillOpen(up))), "Unavailable")
      h.storeDown.down = false
      assert.strictEqual(yield* forward.stillOpen(up), "open")
    }).pipe(inLayer())
  )

  it.effect(
    "finishTunnel: one record with host, bytes, duration and the token fingerprint, never the token",
    () =>
      Effect.gen(function* () {
        const forward = yield* ForwardProxy.ForwardProxy
        const { session, token } = yield* addSession()
        const blind = yield* forward.connect({
          session: session.id,
          token,
          authority: "files.example.test:8443"
        })
        yield* forward.finishTunnel(blind, {
          bytesIn: 120,
          bytesOut: 4_500,
          durationMs: 12.6,
          outcome: "error",
          reason: "session-ended"
        })
        const [record] = yield* records
        assert.strictEqual(record?.outcome, "error")
        assert.strictEqual(record?.reason, "session-ended")
        assert.deepStrictEqual(record?.details, {
          method: "CONNECT",
          mode: "blind",
          upstream: "files.example.test:8443",
          bytesIn: 120,
          bytesOut: 4_500,
          durationMs: 13,
          token: ProxyToken.fingerprint(token)
        })
        assert.notInclude(JSON.stringify(record), token)
        // an intercepted tunnel's record carries how many requests were made inside it
        const up = yield* forward.connect({ session: session.id, token, authority: "llm.example.test:443" })
        yield* forward.finishTunnel(up, {
          bytesIn: 0,
          bytesOut: 0,
          durationMs: 3,
          outcome: "success",
          requests: 0
        })
        const second = (yield* records)[1]
        assert.strictEqual(second?.outcome, "success")
        assert.strictEqual(second?.reason, undefined)
        assert.deepStrictEqual(second?.details, {
          method: "CONNECT",
          mode: "intercept",
          upstream: "llm.example.test:443",
          bytesIn: 0,
          bytesOut: 0,
          durationMs: 3,
          requests: 0,
          token: ProxyToken.fingerprint(token)
        })
      }).pipe(inLayer())
  )
})
