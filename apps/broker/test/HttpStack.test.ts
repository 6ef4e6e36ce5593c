/**
 * The HTTP plumbing over a real socket, with the contexts replaced by small doubles: auth
 * matrix, error shapes and statuses, body limit, timeouts, readiness, metrics, OpenAPI, docs.
 */
import { spawn } from "node:child_process"
import * as Net from "node:net"
import * as Path from "node:path"
import {
  CoordinationStore,
  CurrentCatalog,
  Delivery,
  Errors,
  Identities,
  IdentityRepository,
  OidcIssuer,
  SessionRepository,
  Sessions
} from "@aap/agent-coordination"
import { AuditLog } from "@aap/audit"
import { KeyProvider, SystemKeys } from "@aap/key-custody"
import { SecretStore } from "@aap/vault"
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it, layer } from "@effect/vitest"
import { Context, Duration, Effect, Exit, Fiber, Layer, Redacted, Scope } from "effect"
import * as Auth from "../src/Auth.js"
import * as Broker from "../src/Broker.js"
import * as BrokerConfig from "../src/BrokerConfig.js"
import { Unauthorized } from "../src/BrokerErrors.js"
import * as CatalogHolder from "../src/CatalogHolder.js"
import { SecretCache } from "../src/internal/delivery.js"
import { layerMetrics, loggerLayer, makeBatchedSink, traceIdFrom } from "../src/internal/observability.js"
import { type CachedSession, layerSessionCache, SessionCache } from "../src/internal/sessionCache.js"
import { makeTtlCache } from "../src/internal/ttlCache.js"
import * as Readiness from "../src/Readiness.js"

const catalogFile = Path.resolve(__dirname, "../../../examples/catalog.yaml")

const principals: Record<string, Auth.Principal> = {
  "agent-codex": { _tag: "agent", id: "codex", wallet: "codex" },
  "operator-alice": { _tag: "operator", id: "alice" }
}

const authenticator = Layer.succeed(
  Auth.Authenticator,
  Auth.Authenticator.of({
    authenticate: (token) => {
      const p = principals[Redacted.value(token)]
      return p === undefined ? Effect.fail(new Unauthorized({ message: "unknown token" })) : Effect.succeed(p)
    }
  })
)

let readyMode: "ok" | "fail" | "slow" | "slow-1s" = "ok"
const readiness = Readiness.layer([
  {
    name: "store",
    check: Effect.suspend(() =>
      readyMode === "ok"
        ? Effect.void
        : readyMode === "fail"
          ? Effect.fail("down")
          : Effect.sleep(readyMode === "slow" ? "5 seconds" : "1 second")
    )
  }
])

const config = BrokerConfig.make({
  listen: { host: "127.0.0.1", port: 0 },
  catalogPath: catalogFile,
  maxBodyBytes: 1024,
  requestTimeout: Duration.millis(1500),
  logLevel: "error"
})

const catalog = CatalogHolder.layer(catalogFile).pipe(Layer.provide(NodeFileSystem.layer))
const coordination = Layer.mergeAll(Identities.layer, Sessions.layer()).pipe(
  Layer.provide(Layer.mergeAll(IdentityRepository.layer, SessionRepository.layer)),
  Layer.provide(CoordinationStore.layerMemory),
  Layer.provide(SystemKeys.layerMemory),
  Layer.provide(
    Layer.effect(
      CurrentCatalog.CurrentCatalog,
      Effect.map(CatalogHolder.CatalogHolder, (h) => ({ get: h.current }))
    )
  )
)
const deliveryStub = Layer.succeed(
  Delivery.Delivery,
  Delivery.Delivery.of({
    deliver: (_, id) => Effect.fail(new Errors.NotFound({ message: `no session ${id}` })),
    release: () => Effect.succeed({ revoked: 0, failed: 0 }),
    releaseDue: () => Effect.succeed({ revoked: 0, failed: 0 })
  })
)
const oidcStub = Layer.succeed(
  OidcIssuer.OidcIssuer,
  OidcIssuer.OidcIssuer.of({
    issuer: "http://127.0.0.1",
    mint: () => Effect.die("not used"),
    jwks: Effect.succeed({ keys: [] }),
    discovery: {
      issuer: "http://127.0.0.1",
      jwks_uri: "http://127.0.0.1/.well-known/jwks.json",
      response_types_supported: ["id_token"],
      subject_types_supported: ["public"],
      id_token_signing_alg_values_supported: ["ES256"],
      claims_supported: ["iss"]
    },
    rotate: Effect.die("not used")
  })
)
const vault = Layer.merge(
  SecretStore.layerMemory.pipe(Layer.provide(KeyProvider.layerMemory)),
  Layer.succeed(SecretCache, { invalidate: () => undefined })
)
const services = Layer.mergeAll(
  authenticator,
  readiness,
  coordination,
  layerSessionCache(Duration.seconds(1)),
  deliveryStub,
  oidcStub,
  vault
).pipe(Layer.provideMerge(AuditLog.layerMemory), Layer.provideMerge(catalog))

const BrokerTest = Broker.layerWith(config, services)

const call = (
  base: string,
  method: string,
  path: string,
  init: { token?: string; body?: string; headers?: Record<string, string> } = {}
) =>
  Effect.promise(async () => {
    const headers: Record<string, string> = { ...init.headers }
    if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`
    if (init.body !== undefined) headers["content-type"] ??= "application/json"
    const res = await fetch(base + path, {
      method,
      headers,
      ...(init.body === undefined ? {} : { body: init.body })
    })
    const text = await res.text()
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      json = undefined
    }
    return {
      status: res.status,
      headers: res.headers,
      text,
      json: json as Record<string, unknown> | undefined
    }
  })

describe("HTTP stack", () => {
  layer(BrokerTest, { timeout: 60_000, excludeTestServices: true })((it) => {
    it.effect("healthz answers with a request id and trace id", () =>
      Effect.gen(function* () {
        const { url } = yield* Broker.BrokerInfo
        const r = yield* call(url, "GET", "/healthz", {
          headers: {
            "x-request-id": "req-123",
            traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
          }
        })
        assert.strictEqual(r.status, 200)
        assert.strictEqual(r.json?.status, "ok")
        assert.strictEqual(r.headers.get("x-request-id"), "req-123")
        assert.strictEqual(r.headers.get("x-trace-id"), "0af7651916cd43dd8448eb211c80319c")
      })
    )

    it.effect("an unknown route is 404 with _tag and message", () =>
      Effect.gen(function* () {
        const { url } = yield* Broker.BrokerInfo
        const r = yield* call(url, "GET", "/v1/nothing-here")
        assert.strictEqual(r.status, 404)
        assert.deepStrictEqual(
          r.json,
          { _tag: "RouteNotFound", message: "no route for GET /v1/nothing-here" },
          r.text
        )
      })
    )

    it.effect("auth matrix: no token, bad token, wrong principal kind", () =>
      Effect.gen(function* () {
        const { url } = yield* Broker.BrokerInfo
        const none = yield* call(url, "GET", "/v1/audit/verify")
        assert.strictEqual(none.status, 401)
        assert.strictEqual(none.json?._tag, "Unauthorized")
        assert.isString(none.json?.message)
        const bad = yield* call(url, "GET", "/v1/audit/verify", { token: "nope" })
        assert.strictEqual(bad.status, 401)
        assert.strictEqual(bad.json?._tag, "Unauthorized")
        const agentOnOperator = yield* call(url, "GET", "/v1/audit/verify", { token: "agent-codex" })
        assert.strictEqual(agentOnOperator.status, 403)
        assert.strictEqual(agentOnOperator.json?._tag, "Forbidden")
        const operatorOnAgent = yield* call(url, "GET", "/v1/catalog", { token: "operator-alice" })
        assert.strictEqual(operatorOnAgent.status, 403)
        const ok = yield* call(url, "GET", "/v1/audit/verify", { token: "operator-alice" })
        assert.strictEqual(ok.status, 200)
        assert.strictEqual(ok.json?.ok, true)
      })
    )

    it.effect("an agent sees its catalog", () =>
      Effect.gen(function* () {
        const { url } = yield* Broker.BrokerInfo
        const r = yield* call(url, "GET", "/v1/catalog", { token: "agent-codex" })
        assert.strictEqual(r.status, 200, r.text)
        assert.strictEqual(r.json?.agent, "codex")
        const ids = ((r.json?.capabilities ?? []) as Array<{ id: string }>).map((c) => c.id)
        assert.include(ids, "openrouter-chat")
      })
    )

    it.effect("catalog reload by an operator", () =>
      Effect.gen(function* () {
        const { url } = yield* Broker.BrokerInfo
        const r = yield* call(url, "POST", "/v1/catalog/reload", { token: "operator-alice" })
        assert.strictEqual(r.status, 200)
        assert.isAbove(r.json?.capabilities as number, 3)
      })
    )

    it.effect("a chunked body above the limit is refused (413 or a closed connection), never processed", () =>
      Effect.gen(function* () {
        const { url } = yield* Broker.BrokerInfo
        const outcome = yield* Effect.promise(async () => {
          const chunk = new TextEncoder().encode(`{"value":"${"x".repeat(4096)}"}`)
          const body = new ReadableStream<Uint8Array>({
            start(controller) {
              controller.enqueue(chunk)
              controller.close()
            }
          })
          try {
            const res = await fetch(`${url}/v1/wallets/codex/secrets/chunked`, {
              method: "PUT",
              headers: { authorization: "Bearer operator-alice", "content-type": "application/json" },
              body,
              duplex: "half"
            } as RequestInit)
            return { status: res.status, json: (await res.json().catch(() => undefined)) as unknown }
          } catch {
            return { status: 0, json: undefined }
          }
        })
        assert.include([413, 0], outcome.status)
        if (outcome.status === 413)
          assert.strictEqual((outcome.json as { _tag?: string })._tag, "PayloadTooLarge")
        const stored = yield* call(url, "GET", "/v1/wallets/codex/secrets", { token: "operator-alice" })
        assert.notInclude(stored.text, "chunked")
      })
    )

    it.effect("a declared body above the limit is 413 before it is read", () =>
      Effect.gen(function* () {
        const { url } = yield* Broker.BrokerInfo
        const r = yield* call(url, "POST", "/v1/catalog/reload", {
          token: "operator-alice",
          body: JSON.stringify({ pad: "x".repeat(5000) })
        })
        assert.strictEqual(r.status, 413)
        assert.deepStrictEqual(r.json, { _tag: "PayloadTooLarge", message: "the request body is too large" })
      })
    )

    it.effect("a bad query parameter is 400 with _tag and message", () =>
      Effect.gen(function* () {
        const { url } = yield* Broker.BrokerInfo
        const r = yield* call(url, "GET", "/v1/audit?limit=banana", { token: "operator-alice" })
        assert.strictEqual(r.status, 400)
        assert.strictEqual(r.json?._tag, "HttpApiDecodeError")
        assert.isString(r.json?.message)
        assert.notInclude(r.text, "banana")
      })
    )

    it.effect(
      "a body nested deeper than the limit is 400 before decoding; depth inside strings is not counted",
      () =>
        Effect.gen(function* () {
          const { url } = yield* Broker.BrokerInfo
          const deep = yield* call(url, "POST", "/v1/link-codes/redeem", {
            body: "[".repeat(500) + "]".repeat(500)
          })
          assert.strictEqual(deep.status, 400, deep.text)
          assert.strictEqual(deep.json?._tag, "HttpApiDecodeError")
          assert.include(String(deep.json?.message), "nested deeper than 32 levels")
          const nested33 = yield* call(url, "POST", "/v1/link-codes/redeem", {
            body: `{"code":${"[".repeat(32)}${"]".repeat(32)}}`
          })
          assert.strictEqual(nested33.status, 400, nested33.text)
          assert.include(String(nested33.json?.message), "nested deeper")
          // 32 brackets inside a string (and an escaped quote) are data, not nesting
          const inString = yield* call(url, "POST", "/v1/link-codes/redeem", {
            body: JSON.stringify({ code: `"${"[".repeat(40)}` })
          })
          assert.strictEqual(inString.status, 401, inString.text)
          assert.strictEqual(inString.json?._tag, "Unauthorized")
        })
    )

    it.effect("multipart and form bodies are 400 with _tag, never parsed", () =>
      Effect.gen(function* () {
        const { url } = yield* Broker.BrokerInfo
        for (const contentType of ["multipart/form-data; boundary=x", "application/x-www-form-urlencoded"]) {
          const r = yield* call(url, "POST", "/v1/link-codes/redeem", {
            body: '{"code":"x"}',
            headers: { "content-type": contentType }
          })
          assert.strictEqual(r.status, 400, `${contentType}: ${r.text}`)
          assert.strictEqual(r.json?._tag, "HttpApiDecodeError")
          assert.include(String(r.json?.message), "application/json")
        }
      })
    )

    it.effect("an audit stream id that is not one is 400, not a store error", () =>
      Effect.gen(function* () {
        const { url } = yield* Broker.BrokerInfo
        const r = yield* call(url, "GET", "/v1/audit?stream=..%2Fkeys%2Fkeyring", { token: "operator-alice" })
        assert.strictEqual(r.status, 400, r.text)
        assert.strictEqual(r.json?._tag, "HttpApiDecodeError")
        assert.include(String(r.json?.message), "stream is not valid")
      })
    )

    it.effect(
      "protocol errors from node carry a JSON body with _tag: unframed bytes 400, huge headers 431",
      () =>
        Effect.gen(function* () {
          const { port } = yield* Broker.BrokerInfo
          const raw = (bytes: string) =>
            Effect.promise(
              () =>
                new Promise<string>((resolve, reject) => {
                  const socket = Net.connect(port, "127.0.0.1", () => socket.end(bytes))
                  let out = ""
                  socket.setEncoding("utf8")
                  socket.on("data", (d) => {
                    out += d
                  })
                  socket.on("close", () => resolve(out))
                  socket.on("error", reject)
                })
            )
          const garbage = yield* raw("GARBAGE\r\n\r\n")
          assert.match(garbage, /^HTTP\/1\.1 400 /)
          assert.deepStrictEqual(JSON.parse(garbage.slice(garbage.indexOf("\r\n\r\n") + 4)), {
            _tag: "BadRequest",
            message: "malformed HTTP request"
          })
          const huge = yield* raw(`GET /healthz HTTP/1.1\r\nhost: x\r\nx-pad: ${"a".repeat(20_000)}\r\n\r\n`)
          assert.match(huge, /^HTTP\/1\.1 431 /)
          assert.strictEqual(JSON.parse(huge.slice(huge.indexOf("\r\n\r\n") + 4))._tag, "HeadersTooLarge")
        })
    )

    it.effect("readiness follows its probes; a slow request times out with 503", () =>
      Effect.gen(function* () {
        const { url } = yield* Broker.BrokerInfo
        readyMode = "ok"
        assert.strictEqual((yield* call(url, "GET", "/readyz")).status, 200)
        readyMode = "fail"
        const down = yield* call(url, "GET", "/readyz")
        assert.strictEqual(down.status, 503)
        assert.strictEqual(down.json?._tag, "NotReady")
        assert.include(down.json?.message as string, "store")
        readyMode = "slow"
        const slow = yield* call(url, "GET", "/readyz")
        readyMode = "ok"
        assert.strictEqual(slow.status, 503)
        assert.strictEqual(slow.json?._tag, "RequestTimeout")
      })
    )

    it.effect("metrics are Prometheus text with requests by route and status", () =>
      Effect.gen(function* () {
        const { url } = yield* Broker.BrokerInfo
        yield* call(url, "GET", "/healthz")
        const r = yield* call(url, "GET", "/metrics")
        assert.strictEqual(r.status, 200)
        assert.include(r.headers.get("content-type") ?? "", "text/plain")
        assert.include(r.text, "# TYPE aap_http_requests_total counter")
        assert.include(r.text, 'aap_http_requests_total{method="GET",route="/healthz",status="200"}')
        assert.include(
          r.text,
          'aap_http_request_duration_seconds_bucket{method="GET",route="/healthz",status="200",le="+Inf"}'
        )
      })
    )

    it.effect("Swagger UI is self-contained (no CDN) and the OpenAPI document is 3.1", () =>
      Effect.gen(function* () {
        const { url } = yield* Broker.BrokerInfo
        const docs = yield* call(url, "GET", "/docs")
        assert.strictEqual(docs.status, 200)
        assert.include(docs.text, "SwaggerUIBundle")
        assert.notMatch(docs.text, /<script[^>]+src=["']https?:/)
        assert.notMatch(docs.text, /<link[^>]+href=["']https?:/)
        const spec = yield* call(url, "GET", "/openapi.json")
        assert.strictEqual(spec.json?.openapi, "3.1.0")
      })
    )
  })
})

describe("graceful shutdown", () => {
  it.live(
    "an in-flight request completes after shutdown begins; new connections are refused",
    () =>
      Effect.gen(function* () {
        readyMode = "slow-1s"
        const scope = yield* Scope.make()
        const ctx = yield* Layer.buildWithScope(
          Broker.layerWith(BrokerConfig.make({ ...config, requestTimeout: Duration.seconds(5) }), services),
          scope
        )
        const { url } = Context.get(ctx, Broker.BrokerInfo)
        const inFlight = fetch(`${url}/readyz`).then(async (r) => ({
          status: r.status,
          body: await r.text()
        }))
        yield* Effect.sleep("200 millis")
        const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
        const done = yield* Effect.promise(() => inFlight)
        yield* Fiber.join(closing)
        readyMode = "ok"
        assert.strictEqual(done.status, 200, done.body)
        const after = yield* Effect.promise(() =>
          fetch(`${url}/healthz`).then(
            (r) => r.status,
            () => 0
          )
        )
        assert.strictEqual(after, 0)
      }),
    30_000
  )
})

describe("request logs without the platform's tracing middleware (ADR 0054)", () => {
  const lines: Array<string> = []
  const sink = (line: string) => {
    lines.push(line)
  }
  // the access log is written at level info and below
  const infoConfig = { ...config, logLevel: "info" as const }
  const logged = Broker.layerHttp(infoConfig, { logSink: sink }).pipe(
    Layer.provide(services),
    Layer.provideMerge(layerMetrics),
    Layer.provide(loggerLayer("info", sink)),
    Layer.provide(Layer.setTracerEnabled(false)),
    Layer.provide(BrokerConfig.layerValue(infoConfig))
  )
  layer(logged, { timeout: 60_000, excludeTestServices: true })((it) => {
    it.effect("every request has its access log line with request id, trace id, route and status", () =>
      Effect.gen(function* () {
        const { url } = yield* Broker.BrokerInfo
        const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        const ok = yield* call(url, "GET", "/healthz", { headers: { "x-request-id": "log-1", traceparent } })
        const denied = yield* call(url, "GET", "/v1/sessions/s1", { headers: { "x-request-id": "log-2" } })
        assert.strictEqual(ok.status, 200)
        assert.strictEqual(denied.status, 401)
        const access = lines
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .filter((r) => r.msg === "request")
        const first = access.find((r) => r.requestId === "log-1")
        assert.deepStrictEqual(
          { traceId: first?.traceId, route: first?.route, status: first?.status, method: first?.method },
          { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", route: "/healthz", status: 200, method: "GET" }
        )
        const second = access.find((r) => r.requestId === "log-2")
        assert.strictEqual(second?.status, 401)
        assert.strictEqual(second?.route, "/v1/sessions/:id")
        assert.strictEqual(second?.traceId, denied.headers.get("x-trace-id"))
        assert.match(String(second?.traceId), /^[0-9a-f]{32}$/)
      })
    )

    it.effect("metrics still count every request by route and status", () =>
      Effect.gen(function* () {
        const { url } = yield* Broker.BrokerInfo
        yield* call(url, "GET", "/healthz")
        const metrics = yield* call(url, "GET", "/metrics")
        assert.match(
          metrics.text,
          /aap_http_requests_total\{[^}]*route="\/healthz"[^}]*status="200"[^}]*\} \d+/
        )
      })
    )
  })
})

describe("sessions granted active are cached as created (ADR 0055)", () => {
  const cache = makeTtlCache<string, CachedSession>({ ttlMs: 60_000, maxEntries: 100 })
  const shared = Layer.succeed(SessionCache, { ...cache, invalidate: cache.delete })
  const withCache = Layer.mergeAll(
    authenticator,
    readiness,
    coordination,
    shared,
    deliveryStub,
    oidcStub,
    vault
  ).pipe(Layer.provideMerge(AuditLog.layerMemory), Layer.provideMerge(catalog))
  layer(Broker.layerWith(config, withCache), { timeout: 60_000, excludeTestServices: true })((it) => {
    it.effect("a low-tier session request leaves the active session in the session cache", () =>
      Effect.gen(function* () {
        const { url } = yield* Broker.BrokerInfo
        const created = yield* call(url, "POST", "/v1/sessions", {
          token: "agent-codex",
          body: JSON.stringify({ capability: "openrouter-chat" })
        })
        assert.strictEqual(created.status, 201)
        const id = String(created.json?.id)
        const cached = cache.get(id)
        assert.deepStrictEqual(
          { id: cached?.id, agent: cached?.agent, status: cached?.status, capability: cached?.capability },
          { id, agent: "codex", status: "active", capability: "openrouter-chat" }
        )
        assert.strictEqual(cached?.expiresAt.toJSON(), created.json?.expiresAt)
        // revoking evicts it at once
        const revoked = yield* call(url, "POST", `/v1/sessions/${id}/revoke`, {
          token: "agent-codex",
          body: "{}"
        })
        assert.strictEqual(revoked.status, 200)
        assert.strictEqual(cache.get(id), undefined)
      })
    )
  })
})

describe("log sink and ids", () => {
  it.effect("the batched sink writes a turn's lines in order, in one write, on the next turn", () =>
    Effect.gen(function* () {
      const writes: Array<string> = []
      const sink = makeBatchedSink((text) => writes.push(text))
      sink("a")
      sink("b")
      sink("c")
      assert.deepStrictEqual(writes, [])
      yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
      assert.deepStrictEqual(writes, ["a\nb\nc\n"])
      sink("d")
      sink.flush()
      assert.deepStrictEqual(writes, ["a\nb\nc\n", "d\n"])
    })
  )

  it.effect("the batched sink writes at once when a turn logs more than its limit", () =>
    Effect.gen(function* () {
      const writes: Array<string> = []
      const sink = makeBatchedSink((text) => writes.push(text))
      const line = "x".repeat(1000)
      for (let i = 0; i < 100; i++) sink(line)
      assert.isAbove(writes.length, 0)
      yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
      assert.strictEqual(writes.join(""), `${line}\n`.repeat(100))
    })
  )

  // A process logging through the stdout sink and then ending by each way a process ends
  // (test/fixtures/logExit.ts): nothing logged before the end may be lost.
  const runFixture = (mode: string, onReady?: (kill: (signal: NodeJS.Signals) => void) => void) =>
    Effect.async<{ stdout: string; code: number | null }>((resume) => {
      const child = spawn(process.execPath, ["--import", "tsx", "test/fixtures/logExit.ts", mode], {
        cwd: Path.resolve(__dirname, ".."),
        stdio: ["ignore", "pipe", "pipe"]
      })
      let stdout = ""
      child.stdout.setEncoding("utf8").on("data", (d: string) => {
        stdout += d
      })
      child.stderr.setEncoding("utf8").on("data", (d: string) => {
        if (d.includes("ready")) onReady?.((signal) => child.kill(signal))
      })
      child.on("close", (code) => resume(Effect.succeed({ stdout, code })))
    })
  const tags = (stdout: string) =>
    stdout
      .split("\n")
      .filter((l) => l.length > 0)
      .map((l) => {
        const r = JSON.parse(l) as { msg?: string; i?: number; level?: string }
        return r.i === undefined ? String(r.msg ?? r.level) : `${r.msg}:${r.i}`
      })

  it.effect("lines logged by an exit listener after the flush are written", () =>
    Effect.gen(function* () {
      const out = yield* runFixture("exit-listener")
      assert.strictEqual(out.code, 4)
      assert.deepStrictEqual(
        tags(out.stdout),
        [0, 1, 2, 3].map((i) => `before-exit-listener:${i}`)
      )
    })
  )

  for (const [mode, code] of [
    ["exit", 3],
    ["throw", 1],
    ["reject", 1],
    ["later-throw", 1],
    ["end", 0]
  ] as const) {
    it.effect(`lines logged in the turn a process ends by ${mode} are written`, () =>
      Effect.gen(function* () {
        const out = yield* runFixture(mode)
        assert.strictEqual(out.code, code)
        assert.deepStrictEqual(
          tags(out.stdout),
          [0, 1, 2].map((i) => `before-${mode}:${i}`)
        )
      })
    )
  }

  it.effect("under runMain, SIGTERM and a defect still write the lines logged by finalizers", () =>
    Effect.gen(function* () {
      const signalled = yield* runFixture("signal", (kill) => kill("SIGTERM"))
      assert.deepStrictEqual(tags(signalled.stdout), ["started", "finalizer ran"])
      const died = yield* runFixture("defect")
      assert.strictEqual(died.code, 1)
      assert.deepStrictEqual(tags(died.stdout), ["started", "finalizer ran", "error"])
    })
  )

  it("random trace ids are 32 hex digits, never all zeros, distinct across pool refills", () => {
    const ids = new Set<string>()
    for (let i = 0; i < 1_000; i++) {
      const id = traceIdFrom(undefined)
      assert.match(id, /^[0-9a-f]{32}$/)
      assert.notStrictEqual(id, "0".repeat(32))
      ids.add(id)
    }
    assert.strictEqual(ids.size, 1_000)
    assert.strictEqual(traceIdFrom("00-00000000000000000000000000000000-00f067aa0ba902b7-01").length, 32)
    assert.notStrictEqual(
      traceIdFrom("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
      "0".repeat(32)
    )
  })
})
