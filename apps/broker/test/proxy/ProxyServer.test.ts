import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { type DeliveryPorts, EgressProxy } from "@aap/agent-coordination"
import { AuditReader } from "@aap/audit"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { DateTime, Effect, Layer, ManagedRuntime, Redacted } from "effect"
import * as ProxyServer from "../../src/proxy/ProxyServer.js"
import { catalogFor, KEY, makeTls, proxyLayer, startUpstream, type Tls, type Upstream } from "./support.js"

let tls: Tls
let upstream: Upstream
let runtime: ManagedRuntime.ManagedRuntime<EgressProxy.EgressProxy | AuditReader.AuditReader, never>
let server: Http.Server
let base: string
const sessions = new Map<string, DeliveryPorts.SessionView>()
/** Everything the agent received: status lines, headers, bodies, the delivered credential. */
const received: Array<string> = []

let n = 0
const newSession = async (capability = "llm") => {
  const id = `ses_${String(++n).padStart(26, "0")}`
  const view: DeliveryPorts.SessionView = {
    id,
    agent: "codex",
    wallet: "codex",
    capability,
    tier: "low",
    status: "active",
    expiresAt: DateTime.unsafeMake(Date.now() + 600_000)
  }
  sessions.set(id, view)
  const backing = catalogFor(upstream.url).capabilities.find((c) => c.id === capability)?.backing
  if (backing?.type !== "bearer-token") throw new Error("fixture")
  const issued = await runtime.runPromise(
    Effect.flatMap(EgressProxy.EgressProxy, (p) => p.issue(view, backing))
  )
  received.push(
    JSON.stringify({
      credential: { ...issued.credential, token: Redacted.value(issued.credential.token) },
      env: Object.fromEntries(Object.entries(issued.env).map(([k, v]) => [k, Redacted.value(v)]))
    })
  )
  return { id, view, token: Redacted.value(issued.credential.token), baseUrl: issued.credential.baseUrl }
}

interface Reply {
  readonly status: number
  readonly headers: Http.IncomingHttpHeaders
  readonly body: string
}

const request = (
  method: string,
  url: string,
  headers: Record<string, string> = {},
  body?: string
): Promise<Reply> =>
  new Promise((resolve, reject) => {
    const req = Http.request(url, { method, headers }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => {
        const reply = {
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString("utf8")
        }
        received.push(JSON.stringify(reply))
        resolve(reply)
      })
    })
    req.on("error", reject)
    req.end(body)
  })

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

beforeAll(async () => {
  tls = makeTls()
  upstream = await startUpstream(tls)
  server = Http.createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/plain" })
    res.end("effect app")
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  // Mounted through the layer the broker uses: the proxy answers /v1/proxy/*, the other listener the rest.
  runtime = ManagedRuntime.make(
    ProxyServer.layerMount(server, { upstreamCa: tls.cert }).pipe(
      Layer.provideMerge(proxyLayer(catalogFor(upstream.url), sessions))
    )
  )
  await runtime.runtime()
})

afterAll(async () => {
  server?.close()
  upstream?.server.close()
  await runtime?.dispose()
})

describe("the egress proxy over real sockets", () => {
  it("streams SSE chunk by chunk: the first event arrives before the upstream sends the last", async () => {
    const s = await newSession()
    const firstAt = await new Promise<{ firstAt: number; body: string; status: number }>(
      (resolve, reject) => {
        const req = Http.request(
          `${s.baseUrl}/v1/chat/completions`,
          { method: "POST", headers: { ...bearer(s.token), "content-type": "application/json" } },
          (res) => {
            let body = ""
            let firstAt = 0
            res.on("data", (chunk: Buffer) => {
              body += chunk.toString("utf8")
              if (firstAt === 0) {
                firstAt = performance.now()
                // Only now does the upstream send its last event.
                setTimeout(() => upstream.releaseLast(), 20)
              }
            })
            res.on("end", () => resolve({ firstAt, body, status: res.statusCode ?? 0 }))
          }
        )
        req.on("error", reject)
        req.end('{"stream":true}')
      }
    )
    received.push(firstAt.body)
    assert.strictEqual(firstAt.status, 200)
    assert.isAbove(firstAt.firstAt, 0)
    assert.isBelow(firstAt.firstAt, upstream.lastSentAt)
    assert.strictEqual(firstAt.body, 'data: {"delta":"one"}\n\ndata: [DONE]\n\n')
    // The upstream saw the real key and nothing of the proxy token.
    const seen = upstream.seen.at(-1)
    assert.strictEqual(seen?.authorization, `Bearer ${KEY}`)
    assert.notInclude(JSON.stringify(seen), "aap_pxy_")
    assert.strictEqual(seen?.host, `127.0.0.1:${upstream.port}`)
  })

  it("streams a request body to the upstream and back, and audits method, path, status and bytes", async () => {
    const s = await newSession()
    const payload = "x".repeat(200_000)
    const reply = await request("POST", `${s.baseUrl}/v1/echo?q=1`, { ...bearer(s.token) }, payload)
    assert.strictEqual(reply.status, 200)
    assert.strictEqual(reply.body.length, payload.length)
    await new Promise((r) => setTimeout(r, 50))
    const events = await runtime.runPromise(
      Effect.flatMap(AuditReader.AuditReader, (r) => r.query({ action: "proxy.request", session: s.id }))
    )
    assert.strictEqual(events.length, 1)
    assert.deepInclude(events[0]?.details, {
      method: "POST",
      path: "/api/v1/echo",
      status: 200,
      bytesIn: 200_000,
      bytesOut: 200_000
    })
    assert.notInclude(JSON.stringify(events), KEY)
    assert.notInclude(JSON.stringify(events), "q=1")
  })

  it("the API key header variant works too (x-aap-proxy-token), and an SDK-style key header is stripped", async () => {
    const s = await newSession()
    const reply = await request("GET", `${s.baseUrl}/v1/small`, { "x-aap-proxy-token": s.token })
    assert.strictEqual(reply.status, 200)
    assert.strictEqual(reply.body, '{"ok":true}')
  })

  it("cuts a revoked session off on the next request", async () => {
    const s = await newSession()
    assert.strictEqual((await request("GET", `${s.baseUrl}/v1/small`, bearer(s.token))).status, 200)
    sessions.set(s.id, { ...s.view, status: "revoked" })
    const reply = await request("GET", `${s.baseUrl}/v1/small`, bearer(s.token))
    assert.strictEqual(reply.status, 409)
    assert.deepInclude(JSON.parse(reply.body), { _tag: "SessionNotActive", status: "revoked" })
    sessions.set(s.id, { ...s.view, expiresAt: DateTime.unsafeMake(Date.now() - 1) })
    const expired = await request("GET", `${s.baseUrl}/v1/small`, bearer(s.token))
    assert.strictEqual(expired.status, 410)
    assert.strictEqual(JSON.parse(expired.body)._tag, "Expired")
  })

  it("refuses paths, methods and traversal outside the allow-list with JSON {_tag, message}", async () => {
    const s = await newSession()
    const cases: Array<[string, string, number, string]> = [
      ["GET", "/v1/keys", 403, "PathNotAllowed"],
      ["DELETE", "/v1/small", 403, "MethodNotAllowed"],
      ["GET", "/v1/chat/../keys", 400, "InvalidProxyPath"],
      ["GET", "/v1/chat/%2e%2e/keys", 400, "InvalidProxyPath"],
      ["GET", "/v1/chat/..%2Fkeys", 400, "InvalidProxyPath"],
      ["GET", "/v1/chat/%252e%252e/keys", 400, "InvalidProxyPath"]
    ]
    const before = upstream.seen.length
    for (const [method, path, status, tag] of cases) {
      // Raw request target: no client-side normalisation of "..".
      const reply = await new Promise<Reply>((resolve, reject) => {
        const req = Http.request(
          {
            host: "127.0.0.1",
            port: new URL(base).port,
            method,
            path: `/v1/proxy/${s.id}${path}`,
            headers: bearer(s.token)
          },
          (res) => {
            let body = ""
            res.on("data", (c: Buffer) => {
              body += c.toString("utf8")
            })
            res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
          }
        )
        req.on("error", reject)
        req.end()
      })
      received.push(JSON.stringify(reply))
      assert.strictEqual(reply.status, status, `${method} ${path}`)
      const body = JSON.parse(reply.body)
      assert.strictEqual(body._tag, tag)
      assert.isString(body.message)
    }
    assert.strictEqual(upstream.seen.length, before, "nothing refused reached the upstream")
  })

  it("401 without a token, with another session's token, or with the real key", async () => {
    const a = await newSession()
    const b = await newSession()
    for (const headers of [{}, bearer(b.token), { authorization: `Bearer ${KEY}` }]) {
      const reply = await request("GET", `${a.baseUrl}/v1/small`, headers)
      assert.strictEqual(reply.status, 401)
      assert.strictEqual(JSON.parse(reply.body)._tag, "Unauthorized")
    }
  })

  it("an unreachable upstream is 502 JSON UpstreamUnavailable", async () => {
    const s = await newSession("down")
    const reply = await request("GET", `${s.baseUrl}/anything`, { "x-api-key": s.token })
    assert.strictEqual(reply.status, 502)
    assert.deepInclude(JSON.parse(reply.body), { _tag: "UpstreamUnavailable" })
  })

  it("drops upstream response headers that echo the key", async () => {
    const s = await newSession()
    const reply = await request("GET", `${s.baseUrl}/v1/leak`, bearer(s.token))
    assert.strictEqual(reply.status, 200)
    assert.isUndefined(reply.headers["x-debug-key"])
  })

  it("delivered base URLs use the bound address when no public URL is configured", async () => {
    const s = await newSession()
    assert.strictEqual(s.baseUrl, `${base}/v1/proxy/${s.id}`)
  })

  it("other paths still reach the rest of the server", async () => {
    const reply = await request("GET", `${base}/healthz`)
    assert.strictEqual(reply.body, "effect app")
  })

  it("the real key never appears in anything the agent received", () => {
    assert.isAbove(received.length, 10)
    for (const r of received) assert.notInclude(r, KEY)
  })
})
