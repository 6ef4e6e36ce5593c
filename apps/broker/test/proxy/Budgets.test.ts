/**
 * Per-session request and byte budgets of the egress proxy over real sockets (issue 12, ADR
 * 0080): the streaming edge mounted on a node server, a local HTTPS upstream, small budgets.
 * The vault read is slowed down a little so that concurrent requests of one session really
 * overlap inside `open`.
 */
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { CurrentCatalog, DeliveryPorts, EgressProxy } from "@aap/agent-coordination"
import { AuditLog, AuditReader } from "@aap/audit"
import { SystemKeys } from "@aap/key-custody"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { DateTime, Effect, Layer, ManagedRuntime, Redacted } from "effect"
import * as ProxyServer from "../../src/proxy/ProxyServer.js"
import { catalogFor, KEY, makeTls, startUpstream, type Tls, type Upstream } from "./support.js"

const MAX_REQUESTS = 5
const MAX_BYTES = 8_000

let tls: Tls
let upstream: Upstream
let runtime: ManagedRuntime.ManagedRuntime<EgressProxy.EgressProxy | AuditReader.AuditReader, never>
let server: Http.Server
const sessions = new Map<string, DeliveryPorts.SessionView>()
const received: Array<string> = []

/** The memory vault behind a 5 ms delay: `open` yields at the vault read, as it does in the broker. */
const slowSecrets = Layer.effect(
  DeliveryPorts.Secrets,
  Effect.map(DeliveryPorts.Secrets, (inner) =>
    DeliveryPorts.Secrets.of({
      get: (wallet, name) => Effect.zipRight(Effect.sleep("5 millis"), inner.get(wallet, name)),
      put: inner.put
    })
  )
).pipe(Layer.provide(DeliveryPorts.secretsMemory([["codex", "llm/api-key", KEY]])))

let n = 0
const newSession = async () => {
  const id = `ses_${String(++n).padStart(26, "0")}`
  const view: DeliveryPorts.SessionView = {
    id,
    agent: "codex",
    wallet: "codex",
    capability: "llm",
    tier: "low",
    status: "active",
    expiresAt: DateTime.unsafeMake(Date.now() + 600_000)
  }
  sessions.set(id, view)
  const backing = catalogFor(upstream.url).capabilities.find((c) => c.id === "llm")?.backing
  if (backing?.type !== "bearer-token") throw new Error("fixture")
  const issued = await runtime.runPromise(
    Effect.flatMap(EgressProxy.EgressProxy, (p) => p.issue(view, backing))
  )
  return { id, token: Redacted.value(issued.credential.token), baseUrl: issued.credential.baseUrl }
}

interface Reply {
  readonly status: number
  readonly body: string
  /** Whether the response ended normally (`end`) rather than being cut (`aborted` / error). */
  readonly complete: boolean
}

const request = (method: string, url: string, token: string, body?: string | Buffer): Promise<Reply> =>
  new Promise((resolve, reject) => {
    const req = Http.request(url, { method, headers: { authorization: `Bearer ${token}` } }, (res) => {
      const chunks: Array<Buffer> = []
      let settled = false
      const done = (complete: boolean) => {
        if (settled) return
        settled = true
        const reply = { status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8"), complete }
        received.push(JSON.stringify(reply))
        resolve(reply)
      }
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => done(true))
      res.on("aborted", () => done(false))
      res.on("error", () => done(false))
      res.on("close", () => done(res.complete))
    })
    req.on("error", reject)
    req.end(body)
  })

const events = (session: string) =>
  runtime.runPromise(
    Effect.flatMap(AuditReader.AuditReader, (r) => r.query({ action: "proxy.request", session }))
  )

/** The audit is appended after the response: wait until `count` records of the session are there. */
const eventsOf = async (session: string, count: number) => {
  for (let i = 0; i < 100; i++) {
    const found = await events(session)
    if (found.length >= count) return found
    await new Promise((r) => setTimeout(r, 20))
  }
  return events(session)
}

beforeAll(async () => {
  tls = makeTls()
  upstream = await startUpstream(tls)
  server = Http.createServer((_req, res) => res.end())
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  runtime = ManagedRuntime.make(
    ProxyServer.layerMount(server, { upstreamCa: tls.cert }).pipe(
      Layer.provideMerge(
        EgressProxy.layer.pipe(
          Layer.provideMerge(
            Layer.mergeAll(
              DeliveryPorts.sessionsFromMap(sessions),
              slowSecrets,
              CurrentCatalog.layer(catalogFor(upstream.url)),
              AuditLog.layerMemory,
              SystemKeys.layerMemory,
              EgressProxy.layerConfig({
                publicUrl: base,
                maxRequestsPerSession: MAX_REQUESTS,
                maxBytesPerSession: MAX_BYTES
              })
            )
          )
        )
      )
    )
  )
  await runtime.runtime()
})

afterAll(async () => {
  server?.close()
  upstream?.server.close()
  await runtime?.dispose()
})

describe("proxy budgets over real sockets", () => {
  it("the request after the request budget is 429 ProxyBudgetExceeded and audited as denied", async () => {
    const s = await newSession()
    const before = upstream.seen.length
    for (let i = 0; i < MAX_REQUESTS; i++) {
      const ok = await request("GET", `${s.baseUrl}/v1/small`, s.token)
      assert.strictEqual(ok.status, 200, `request ${i + 1}`)
    }
    const refused = await request("GET", `${s.baseUrl}/v1/small`, s.token)
    assert.strictEqual(refused.status, 429)
    assert.deepInclude(JSON.parse(refused.body), {
      _tag: "ProxyBudgetExceeded",
      limit: "requests",
      used: MAX_REQUESTS,
      budget: MAX_REQUESTS
    })
    assert.strictEqual(
      upstream.seen.length - before,
      MAX_REQUESTS,
      "the refused request never reached the upstream"
    )
    const records = await eventsOf(s.id, MAX_REQUESTS + 1)
    const denied = records.filter((e) => e.outcome === "denied")
    assert.strictEqual(denied.length, 1)
    assert.strictEqual(denied[0]?.reason, "budget:requests")
    assert.strictEqual(records.filter((e) => e.outcome === "success").length, MAX_REQUESTS)
  })

  it("concurrent requests of one session cannot overshoot the request budget", async () => {
    const s = await newSession()
    const replies = await Promise.all(
      Array.from({ length: 3 * MAX_REQUESTS }, () => request("GET", `${s.baseUrl}/v1/small`, s.token))
    )
    assert.strictEqual(replies.filter((r) => r.status === 200).length, MAX_REQUESTS)
    assert.strictEqual(replies.filter((r) => r.status === 429).length, 2 * MAX_REQUESTS)
  })

  it("an SSE response that crosses the byte budget is cut mid-stream and audited with why and the bytes", async () => {
    const s = await newSession()
    // 20 events of 1,000 bytes: 20,000 bytes against a budget of 8,000.
    const reply = await request("POST", `${s.baseUrl}/v1/stream?events=20&size=1000`, s.token)
    assert.strictEqual(reply.status, 200)
    assert.isFalse(reply.complete, "the agent sees the stream end early, not a clean end")
    const got = Buffer.byteLength(reply.body)
    assert.isAbove(got, 0, "events before the cut arrived")
    assert.isAtMost(got, MAX_BYTES)
    assert.strictEqual(got % 1000, 0, "only whole upstream chunks before the cut")
    const [record] = await eventsOf(s.id, 1)
    assert.strictEqual(record?.outcome, "error")
    assert.strictEqual(record?.reason, "budget:bytes")
    assert.deepInclude(record?.details, { status: 200, bytesIn: 0, bytesOut: got })
    // The session is spent: the next request is refused before the upstream.
    const next = await request("GET", `${s.baseUrl}/v1/small`, s.token)
    assert.strictEqual(next.status, 429)
    assert.deepInclude(JSON.parse(next.body), {
      _tag: "ProxyBudgetExceeded",
      limit: "bytes",
      budget: MAX_BYTES
    })
  })

  it("request-body bytes count too: an upload over the byte budget is refused with 429 and never completes upstream", async () => {
    const s = await newSession()
    const small = await request("POST", `${s.baseUrl}/v1/upload`, s.token, "x".repeat(1_000))
    assert.strictEqual(small.status, 200)
    assert.deepStrictEqual(JSON.parse(small.body), { bytes: 1_000 })
    const big = await request("POST", `${s.baseUrl}/v1/upload`, s.token, Buffer.alloc(64 * 1024, 0x61))
    assert.strictEqual(big.status, 429)
    assert.deepInclude(JSON.parse(big.body), {
      _tag: "ProxyBudgetExceeded",
      limit: "bytes",
      budget: MAX_BYTES
    })
    const records = await eventsOf(s.id, 2)
    const cut = records.find((e) => e.reason === "budget:bytes")
    assert.strictEqual(cut?.outcome, "error")
    const details = cut?.details as { readonly status: number; readonly bytesIn: number }
    assert.strictEqual(details.status, 429)
    assert.isAtMost(details.bytesIn, MAX_BYTES - 1_000 - 11)
    // What the first exchange moved (1,000 up, 11 down) plus what was forwarded of the second.
    const next = await request("GET", `${s.baseUrl}/v1/small`, s.token)
    assert.strictEqual(next.status, 429)
  })

  it("budgets of one session do not affect another", async () => {
    const spent = await newSession()
    for (let i = 0; i < MAX_REQUESTS; i++) await request("GET", `${spent.baseUrl}/v1/small`, spent.token)
    assert.strictEqual((await request("GET", `${spent.baseUrl}/v1/small`, spent.token)).status, 429)
    const bytes = await newSession()
    await request("POST", `${bytes.baseUrl}/v1/stream?events=20&size=1000`, bytes.token)
    assert.strictEqual((await request("GET", `${bytes.baseUrl}/v1/small`, bytes.token)).status, 429)

    const fresh = await newSession()
    const ok = await request("POST", `${fresh.baseUrl}/v1/stream?events=5&size=1000`, fresh.token)
    assert.strictEqual(ok.status, 200)
    assert.isTrue(ok.complete)
    assert.strictEqual(Buffer.byteLength(ok.body), 5_000)
    for (let i = 1; i < MAX_REQUESTS; i++) {
      assert.strictEqual((await request("GET", `${fresh.baseUrl}/v1/small`, fresh.token)).status, 200)
    }
  })

  it("the real key never appears in anything the agent received", () => {
    assert.isAbove(received.length, 20)
    for (const r of received) assert.notInclude(r, KEY)
  })
})
