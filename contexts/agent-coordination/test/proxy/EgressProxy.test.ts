import * as V8 from "node:v8"
import { AuditLog, AuditReader, AuditSink } from "@aap/audit"
import { Catalog } from "@aap/catalog"
import { SystemKeys } from "@aap/key-custody"
import { assert, describe, it } from "@effect/vitest"
import { DateTime, Effect, Exit, Layer, Redacted, Ref, Schema, TestClock } from "effect"
import * as CurrentCatalog from "../../src/CurrentCatalog.js"
import * as Ports from "../../src/delivery/Ports.js"
import * as EgressProxy from "../../src/proxy/EgressProxy.js"
import * as ProxyToken from "../../src/proxy/ProxyToken.js"

const KEY = "CANARY-proxy-upstream-key-41c7"
const T0 = 1_900_000_000_000

const catalogInput = {
  schemaVersion: 1,
  agents: [
    { id: "codex", wallet: "codex" },
    { id: "claude", wallet: "claude" }
  ],
  operators: [{ id: "alice" }],
  capabilities: [
    {
      id: "llm",
      tier: "low",
      agents: ["codex"],
      ttl: { default: "15m", max: "1h" },
      backing: {
        type: "bearer-token",
        secret: "llm/api-key",
        env: "OPENROUTER_API_KEY",
        proxy: {
          upstream: "https://llm.example.test/api",
          header: "Authorization",
          scheme: "Bearer",
          paths: ["/api/v1/chat/*"],
          methods: ["POST"]
        }
      }
    },
    {
      id: "plain",
      tier: "low",
      agents: ["codex"],
      ttl: { default: "15m", max: "1h" },
      backing: { type: "bearer-token", secret: "llm/api-key", env: "PLAIN_TOKEN" }
    }
  ]
}
const decode = Schema.decodeUnknownSync(Catalog.Catalog)
const catalog = decode(catalogInput)

interface Harness {
  readonly sessions: Map<string, Ports.SessionView>
  readonly vaultReads: { n: number }
  readonly catalogRef: Ref.Ref<Catalog.Catalog>
}

class TestHarness extends Effect.Tag("test/ProxyHarness")<TestHarness, Harness>() {}

const makeLayer = (config: Partial<EgressProxy.ProxyConfigShape> = {}) => {
  const sessions = new Map<string, Ports.SessionView>()
  const vaultReads = { n: 0 }
  const catalogRef = Ref.unsafeMake(catalog)
  const secrets = Layer.effect(
    Ports.Secrets,
    Effect.map(Ports.Secrets, (inner) =>
      Ports.Secrets.of({
        ...inner,
        get: (wallet, name) =>
          Effect.suspend(() => {
            vaultReads.n++
            return inner.get(wallet, name)
          })
      })
    )
  ).pipe(Layer.provide(Ports.secretsMemory([["codex", "llm/api-key", KEY]])))
  return EgressProxy.layer.pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        Ports.sessionsFromMap(sessions),
        secrets,
        CurrentCatalog.fromRef(catalogRef),
        AuditLog.layerMemory,
        SystemKeys.layerMemory,
        EgressProxy.layerConfig({ publicUrl: "http://broker.test:8787/", ...config }),
        Layer.succeed(TestHarness, { sessions, vaultReads, catalogRef })
      )
    )
  )
}

let n = 0
const addSession = (status: Ports.SessionStatus = "active", capability = "llm", ttlSeconds = 900) =>
  Effect.gen(function* () {
    const h = yield* TestHarness
    const now = yield* DateTime.now
    const s: Ports.SessionView = {
      id: `ses_${String(++n).padStart(26, "0")}`,
      agent: "codex",
      wallet: "codex",
      capability,
      tier: "low",
      status,
      expiresAt: DateTime.add(now, { seconds: ttlSeconds })
    }
    h.sessions.set(s.id, s)
    return s
  })

const backingOf = (c: Catalog.Catalog, id: string) => {
  const b = c.capabilities.find((x) => x.id === id)?.backing
  if (b?.type !== "bearer-token") throw new Error("fixture")
  return b
}

const tokenFor = (s: Ports.SessionView) =>
  Effect.gen(function* () {
    const proxy = yield* EgressProxy.EgressProxy
    const issued = yield* proxy.issue(s, backingOf(catalog, "llm"))
    return Redacted.value(issued.credential.token)
  })

const req = (session: string, token: string | undefined, path = "/v1/chat/completions", method = "POST") => ({
  session,
  method,
  path,
  headers: token === undefined ? {} : { authorization: `Bearer ${token}` }
})

const proxyRecords = Effect.flatMap(AuditReader.AuditReader, (r) =>
  r.query({ action: "proxy.request", limit: 1000 })
)

const failureTag = <A, E extends { readonly _tag: string }>(exit: Exit.Exit<A, E>) =>
  Exit.match(exit, {
    onSuccess: () => "success",
    onFailure: (cause) => (cause._tag === "Fail" ? cause.error._tag : cause._tag)
  })

const inLayer =
  (config: Partial<EgressProxy.ProxyConfigShape> = {}) =>
  <A, E, R>(test: Effect.Effect<A, E, R>) =>
    Effect.gen(function* () {
      yield* TestClock.setTime(T0)
      return yield* test.pipe(Effect.provide(makeLayer(config)))
    })

describe("EgressProxy", () => {
  it.effect("issue: the base URL and a proxy token, never the key", () =>
    Effect.gen(function* () {
      const proxy = yield* EgressProxy.EgressProxy
      const s = yield* addSession()
      const issued = yield* proxy.issue(s, backingOf(catalog, "llm"))
      assert.strictEqual(issued.credential.baseUrl, `http://broker.test:8787/v1/proxy/${s.id}`)
      assert.strictEqual(issued.credential.header, "authorization")
      const env = Object.fromEntries(Object.entries(issued.env).map(([k, v]) => [k, Redacted.value(v)]))
      assert.deepStrictEqual(Object.keys(env).sort(), [
        "AAP_PROXY_TOKEN",
        "AAP_PROXY_URL",
        "OPENROUTER_API_KEY",
        "OPENROUTER_BASE_URL"
      ])
      assert.strictEqual(env.OPENROUTER_BASE_URL, issued.credential.baseUrl)
      assert.isTrue(env.OPENROUTER_API_KEY?.startsWith("aap_pxy_"))
      const everything = JSON.stringify({
        env,
        details: issued.details,
        credential: { ...issued.credential, token: Redacted.value(issued.credential.token) }
      })
      assert.notInclude(everything, KEY)
      assert.strictEqual((yield* TestHarness).vaultReads.n, 0)
    }).pipe(inLayer())
  )

  it.effect("open: a valid request gets the injected credential and the upstream target", () =>
    Effect.gen(function* () {
      const proxy = yield* EgressProxy.EgressProxy
      const s = yield* addSession()
      const grant = yield* proxy.open(req(s.id, yield* tokenFor(s)))
      assert.strictEqual(Redacted.value(grant.credential), `Bearer ${KEY}`)
      assert.strictEqual(grant.target.path, "/api/v1/chat/completions")
      assert.strictEqual(grant.target.upstream.host, "llm.example.test")
      assert.strictEqual(grant.method, "POST")
      yield* proxy.finish(grant, {
        status: 200,
        bytesIn: 10,
        bytesOut: 20,
        durationMs: 3.2,
        outcome: "success"
      })
      const records = yield* proxyRecords
      assert.strictEqual(records.length, 1)
      assert.deepInclude(records[0]?.details, {
        method: "POST",
        path: "/api/v1/chat/completions",
        status: 200,
        bytesIn: 10,
        bytesOut: 20,
        upstream: "llm.example.test"
      })
      assert.notInclude(JSON.stringify(records), KEY)
    }).pipe(inLayer())
  )

  it.effect("open: a missing, forged or foreign token is 401 without a store or vault read or audit", () =>
    Effect.gen(function* () {
      const proxy = yield* EgressProxy.EgressProxy
      const a = yield* addSession()
      const b = yield* addSession()
      const tokenB = yield* tokenFor(b)
      for (const r of [
        req(a.id, undefined),
        req(a.id, tokenB),
        req(a.id, `${tokenB.slice(0, -1)}A`),
        req("ses_nope", tokenB)
      ]) {
        assert.strictEqual(failureTag(yield* Effect.exit(proxy.open(r))), "Unauthorized")
      }
      assert.strictEqual((yield* TestHarness).vaultReads.n, 0)
      assert.strictEqual((yield* proxyRecords).length, 0)
    }).pipe(inLayer())
  )

  it.effect("open: a token remembered as verified still opens only its own session", () =>
    Effect.gen(function* () {
      const proxy = yield* EgressProxy.EgressProxy
      const a = yield* addSession()
      const b = yield* addSession()
      const tokenB = yield* tokenFor(b)
      const first = yield* proxy.open(req(b.id, tokenB))
      const again = yield* proxy.open(req(b.id, tokenB))
      assert.strictEqual(again.tokenFingerprint, first.tokenFingerprint)
      assert.strictEqual(first.tokenFingerprint, ProxyToken.fingerprint(tokenB))
      // B's token, verified and remembered, is still refused on A's URL and for a removed session.
      assert.strictEqual(failureTag(yield* Effect.exit(proxy.open(req(a.id, tokenB)))), "Unauthorized")
      assert.strictEqual(failureTag(yield* Effect.exit(proxy.open(req("ses_nope", tokenB)))), "Unauthorized")
      ;(yield* TestHarness).sessions.delete(b.id)
      assert.strictEqual(failureTag(yield* Effect.exit(proxy.open(req(b.id, tokenB)))), "Unauthorized")
    }).pipe(inLayer())
  )

  it.effect("open: a remembered token is held by its digest; the token itself is not kept in memory", () =>
    Effect.gen(function* () {
      const proxy = yield* EgressProxy.EgressProxy
      const s = yield* addSession()
      // The test keeps the tokens only masked, so the one string a heap snapshot can find is
      // one the proxy retained. Each use builds a fresh string from the mask.
      const mask = (t: string): Uint8Array => Buffer.from(t, "utf8").map((b) => b ^ 0x5a)
      const unmask = (m: Uint8Array) => Buffer.from(m.map((b) => b ^ 0x5a)).toString("utf8")
      const used = mask(yield* tokenFor(s))
      const control = mask(yield* tokenFor(s))
      // The requests run in an Effect of their own that is garbage afterwards (a generator's
      // frame would otherwise keep its last request in a register).
      const opens = Effect.gen(function* () {
        for (let i = 0; i < 3; i++) {
          const opened = yield* proxy.open(req(s.id, unmask(used)))
          assert.strictEqual(opened.tokenFingerprint, ProxyToken.fingerprint(unmask(used)))
        }
      })
      yield* opens
      // Proof that the search finds a live token: this one is held on purpose.
      const held = { token: unmask(control) }
      // V8 keeps the subject of the last regular-expression match (the legacy `RegExp.lastMatch`
      // cell): here the header the token was parsed from. Any later match anywhere in the
      // process (every request runs some) replaces it; make one that matches, so what remains is ours.
      assert.isNotNull(/y/.exec("y"))
      const heap = yield* Effect.promise(
        () =>
          new Promise<string>((resolve, reject) => {
            const chunks: Array<Buffer> = []
            const stream = V8.getHeapSnapshot() // a full GC comes first: only reachable strings
            stream.on("data", (c: Buffer) => chunks.push(c))
            stream.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
            stream.on("error", reject)
          })
      )
      const nonceOf = (m: Uint8Array) => unmask(m).slice(8, 8 + 24)
      assert.isTrue(heap.includes(nonceOf(control)), "the held control token shows in the snapshot")
      assert.isFalse(heap.includes(nonceOf(used)), "the proxy kept the used token's value in memory")
      assert.isTrue(held.token.length > 0)
    }).pipe(inLayer())
  )

  it.effect("open: revocation and expiry take effect on the next request", () =>
    Effect.gen(function* () {
      const proxy = yield* EgressProxy.EgressProxy
      const h = yield* TestHarness
      const s = yield* addSession("active", "llm", 60)
      const token = yield* tokenFor(s)
      yield* proxy.open(req(s.id, token))
      h.sessions.set(s.id, { ...s, status: "revoked" })
      assert.strictEqual(failureTag(yield* Effect.exit(proxy.open(req(s.id, token)))), "SessionNotActive")
      const t = yield* addSession("active", "llm", 60)
      const tokenT = yield* tokenFor(t)
      yield* proxy.open(req(t.id, tokenT))
      yield* TestClock.adjust("60 seconds")
      assert.strictEqual(failureTag(yield* Effect.exit(proxy.open(req(t.id, tokenT)))), "Expired")
      const reasons = (yield* proxyRecords).map((e) => e.reason)
      assert.deepStrictEqual(reasons, ["not-active:revoked", "expired"])
    }).pipe(inLayer())
  )

  it.effect(
    "open: paths, methods and traversal outside the allow-list are refused and audited, without a vault read",
    () =>
      Effect.gen(function* () {
        const proxy = yield* EgressProxy.EgressProxy
        const s = yield* addSession()
        const token = yield* tokenFor(s)
        assert.strictEqual(
          failureTag(yield* Effect.exit(proxy.open(req(s.id, token, "/v1/keys")))),
          "PathNotAllowed"
        )
        assert.strictEqual(
          failureTag(yield* Effect.exit(proxy.open(req(s.id, token, "/v1/chat/completions", "GET")))),
          "MethodNotAllowed"
        )
        assert.strictEqual(
          failureTag(yield* Effect.exit(proxy.open(req(s.id, token, "/v1/chat/%2e%2e/keys")))),
          "InvalidProxyPath"
        )
        assert.strictEqual(
          failureTag(yield* Effect.exit(proxy.open(req(s.id, token, "/v1/chat/..%2fkeys")))),
          "InvalidProxyPath"
        )
        assert.strictEqual((yield* TestHarness).vaultReads.n, 0)
        assert.deepStrictEqual(
          (yield* proxyRecords).map((e) => [e.outcome, e.reason]),
          [
            ["denied", "path-not-allowed"],
            ["denied", "method-not-allowed"],
            ["denied", "bad-path:dot-segment"],
            ["denied", "bad-path:encoded-separator"]
          ]
        )
      }).pipe(inLayer())
  )

  it.effect("open: the catalog in force now decides (capability removed, proxy removed)", () =>
    Effect.gen(function* () {
      const proxy = yield* EgressProxy.EgressProxy
      const h = yield* TestHarness
      const s = yield* addSession()
      const token = yield* tokenFor(s)
      const llm = catalogInput.capabilities[0]
      yield* Ref.set(
        h.catalogRef,
        decode({
          ...catalogInput,
          capabilities: [{ ...llm, backing: { ...llm?.backing, proxy: undefined } }]
        })
      )
      assert.strictEqual(failureTag(yield* Effect.exit(proxy.open(req(s.id, token)))), "NotProxied")
      yield* Ref.set(h.catalogRef, decode({ ...catalogInput, capabilities: [] }))
      assert.strictEqual(failureTag(yield* Effect.exit(proxy.open(req(s.id, token)))), "RequestDenied")
      yield* Ref.set(h.catalogRef, catalog)
      yield* proxy.open(req(s.id, token))
    }).pipe(inLayer())
  )

  it.effect("open: request and byte budgets answer ProxyBudgetExceeded", () =>
    Effect.gen(function* () {
      const proxy = yield* EgressProxy.EgressProxy
      const s = yield* addSession()
      const token = yield* tokenFor(s)
      yield* proxy.open(req(s.id, token))
      yield* proxy.open(req(s.id, token))
      const third = yield* Effect.exit(proxy.open(req(s.id, token)))
      assert.strictEqual(failureTag(third), "ProxyBudgetExceeded")
      const t = yield* addSession()
      const tokenT = yield* tokenFor(t)
      const grant = yield* proxy.open(req(t.id, tokenT))
      assert.isTrue(grant.budget.addBytes(60))
      assert.isFalse(grant.budget.addBytes(50))
      const next = yield* Effect.exit(proxy.open(req(t.id, tokenT)))
      assert.strictEqual(failureTag(next), "ProxyBudgetExceeded")
      if (
        Exit.isFailure(next) &&
        next.cause._tag === "Fail" &&
        next.cause.error._tag === "ProxyBudgetExceeded"
      ) {
        assert.strictEqual(next.cause.error.limit, "bytes")
      }
    }).pipe(inLayer({ maxRequestsPerSession: 2, maxBytesPerSession: 100 }))
  )

  it.effect(
    "a lost proxy.request record closes the proxy until the audit is back, and the gap is recorded",
    () =>
      Effect.gen(function* () {
        const proxy = yield* EgressProxy.EgressProxy
        const sink = yield* AuditSink.MemorySink
        const s = yield* addSession()
        const token = yield* tokenFor(s)
        const grant = yield* proxy.open(req(s.id, token))
        yield* sink.setMode("fail")
        yield* proxy.finish(grant, {
          status: 200,
          bytesIn: 0,
          bytesOut: 0,
          durationMs: 1,
          outcome: "success"
        })
        assert.strictEqual(failureTag(yield* Effect.exit(proxy.open(req(s.id, token)))), "AuditUnavailable")
        yield* sink.setMode("ok")
        yield* proxy.open(req(s.id, token))
        const records = yield* proxyRecords
        assert.deepStrictEqual(
          records.map((e) => [e.outcome, e.reason, e.details.lostRecords]),
          [["error", "audit-was-unavailable", 1]]
        )
      }).pipe(inLayer())
  )

  it.effect("a secret missing from the wallet is CredentialUnavailable", () =>
    Effect.gen(function* () {
      const proxy = yield* EgressProxy.EgressProxy
      const h = yield* TestHarness
      const s = yield* addSession()
      h.sessions.set(s.id, { ...s, wallet: "claude", agent: "codex" })
      const token = yield* tokenFor(s)
      // wallet changed relative to the catalog: denied before the vault
      assert.strictEqual(failureTag(yield* Effect.exit(proxy.open(req(s.id, token)))), "RequestDenied")
      const llm = catalogInput.capabilities[0]
      yield* Ref.set(
        h.catalogRef,
        decode({
          ...catalogInput,
          capabilities: [{ ...llm, backing: { ...llm?.backing, secret: "llm/other" } }]
        })
      )
      h.sessions.set(s.id, s)
      assert.strictEqual(
        failureTag(yield* Effect.exit(proxy.open(req(s.id, token)))),
        "CredentialUnavailable"
      )
    }).pipe(inLayer())
  )

  it("baseUrlVariable names the SDK variables", () => {
    assert.strictEqual(EgressProxy.baseUrlVariable("OPENROUTER_API_KEY"), "OPENROUTER_BASE_URL")
    assert.strictEqual(EgressProxy.baseUrlVariable("ANTHROPIC_API_KEY"), "ANTHROPIC_BASE_URL")
    assert.strictEqual(EgressProxy.baseUrlVariable("OPENAI_API_KEY"), "OPENAI_BASE_URL")
    assert.strictEqual(EgressProxy.baseUrlVariable("GROQ_TOKEN"), "GROQ_BASE_URL")
    assert.strictEqual(EgressProxy.baseUrlVariable("SOMETHING"), "SOMETHING_BASE_URL")
  })
})
