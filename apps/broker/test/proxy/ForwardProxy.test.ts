/**
 * The forward-proxy mode (issue 12, ADR 0081/0082) in the embedded broker, driven by the real
 * `curl` binary through `--proxy` (CONNECT on the broker's listener):
 * - a blind tunnel to a `proxy.connect` host (a local TLS server curl trusts with `--cacert`);
 * - an allowed blind host that is down: 502, the tunnel audited as an error;
 * - a host outside the allow-list: 403 `HostNotAllowed`, audited;
 * - no or bad `Proxy-Authorization`: 407 with `Proxy-Authenticate`, not audited;
 * - revoking the session cuts a tunnel that is open;
 * - TLS interception with the operator CA: curl trusts the CA, the upstream gets the injected
 *   key, curl never sees it, each inner request has its `proxy.request` record, SSE streams,
 *   the request budget applies;
 * - absolute-form (`HTTP_PROXY`-style) requests are refused;
 * - a broker without an operator CA refuses CONNECT to the upstream host and serves no CA.
 * The upstream key and the proxy token are canaries: neither appears in a log line, an error
 * body or an audit record.
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Https from "node:https"
import * as Net from "node:net"
import * as Path from "node:path"
import * as NodeTls from "node:tls"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Layer, ManagedRuntime } from "effect"
import * as Broker from "../../src/Broker.js"
import * as BrokerConfig from "../../src/BrokerConfig.js"
import { call, post, tempHome } from "../support.js"
import { CA_EXTENSIONS, KEY, makeCert, makeTls, startUpstream, type Tls, type Upstream } from "./support.js"

const CURL = "/usr/bin/curl"

type Runtime = ManagedRuntime.ManagedRuntime<Broker.BrokerInfo | Broker.BrokerBootstrap, unknown>

interface Curl {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs curl (asynchronously: the broker is in this process). */
const curl = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = {}): Promise<Curl> =>
  new Promise((resolve) => {
    const child = ChildProcess.spawn(CURL, ["-sS", "--max-time", "60", ...args], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString("utf8")
    })
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString("utf8")
    })
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }))
  })

/** One raw CONNECT (or any request line) over a socket; the whole response until the broker closes. */
const raw = (port: number, request: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const socket = Net.connect({ host: "127.0.0.1", port }, () => socket.write(request))
    let text = ""
    socket.on("data", (c: Buffer) => {
      text += c.toString("utf8")
    })
    socket.on("error", reject)
    socket.on("close", () => resolve(text))
  })

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`

interface Session {
  readonly id: string
  readonly token: string
}

/** curl's arguments to go through broker `b` as session `s`, trusting `cacert`. */
const via = (b: Started, s: Session, cacert: string) => [
  "--proxy",
  b.url,
  "--proxy-user",
  `${s.id}:${s.token}`,
  "--cacert",
  cacert
]

/** A raw CONNECT to `authority` with `s`'s credentials (`extra`: more header lines, each ending CRLF). */
const connectAs = (authority: string, s: Session, extra = "") =>
  `CONNECT ${authority} HTTP/1.1\r\n${extra}Proxy-Authorization: ${basic(s.id, s.token)}\r\n\r\n`

/**
 * Starts `curl -sS -N args` and resolves once its stdout holds `marker` (a response that has
 * started and not ended); `done` is the whole run once curl exits.
 */
const curlUntil = async (args: ReadonlyArray<string>, marker: string) => {
  const child = ChildProcess.spawn(CURL, ["-sS", "-N", ...args], {
    env: { PATH: process.env.PATH },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let stdout = ""
  let stderr = ""
  const done = new Promise<Curl>((resolve) =>
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }))
  )
  child.stderr.on("data", (c: Buffer) => {
    stderr += c.toString("utf8")
  })
  await new Promise<void>((resolve) =>
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString("utf8")
      if (stdout.includes(marker)) resolve()
    })
  )
  return { stdout: () => stdout, done }
}

/** Every file under `dir`, concatenated (the JSONL audit log as written on disk). */
const readTree = (dir: string): string =>
  Fs.readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => Fs.readFileSync(Path.join(e.parentPath, e.name), "utf8"))
    .join("\n")

/**
 * The blind target: a TLS server on 127.0.0.1 (`GET /hello` → `blind-ok`; `GET /hang` writes one
 * chunk and never ends). It records every request's headers.
 */
const startBlind = (tls: Tls) =>
  new Promise<{ server: Https.Server; port: number; seen: Array<Record<string, unknown>> }>((resolve) => {
    const seen: Array<Record<string, unknown>> = []
    const server = Https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
      seen.push({ ...req.headers })
      req.resume()
      if (req.url === "/big") {
        res.writeHead(200, { "content-type": "application/octet-stream" })
        res.end(Buffer.alloc(200_000, 0x61))
        return
      }
      if (req.url === "/hang") {
        res.writeHead(200, { "content-type": "text/plain" })
        res.write("first-chunk\n")
        return
      }
      res.writeHead(200, { "content-type": "text/plain" })
      res.end("blind-ok")
    })
    server.listen(0, "127.0.0.1", () => {
      const a = server.address()
      resolve({ server, port: typeof a === "object" && a !== null ? a.port : 0, seen })
    })
  })

const catalogYaml = (upstreamPort: number, blindPort: number) =>
  [
    "schemaVersion: 1",
    "agents:",
    "  - { id: codex, wallet: codex }",
    "operators:",
    "  - { id: alice }",
    "capabilities:",
    "  - id: llm",
    "    tier: low",
    "    agents: [codex]",
    "    ttl: { default: 15m, max: 1h }",
    "    backing:",
    "      type: bearer-token",
    "      secret: llm/api-key",
    "      env: OPENROUTER_API_KEY",
    "      proxy:",
    // `localhost`, not 127.0.0.1: the intercepted host is a DNS name here, the blind one an IP.
    `        upstream: https://localhost:${upstreamPort}/api`,
    "        header: Authorization",
    "        scheme: Bearer",
    "        paths: [/api/v1/small, /api/v1/chat/*]",
    "        methods: [GET, POST]",
    // Port 1 on loopback: nothing listens there.
    `        connect: ["127.0.0.1:${blindPort}", "127.0.0.1:1"]`,
    "  - id: base-url-only",
    "    tier: low",
    "    agents: [codex]",
    "    ttl: { default: 15m, max: 1h }",
    "    backing:",
    "      type: bearer-token",
    "      secret: llm/api-key",
    "      env: OTHER_API_KEY",
    "      proxy:",
    `        upstream: https://localhost:${upstreamPort}/api`,
    "        header: Authorization",
    "        scheme: Bearer",
    "        paths: [/api/v1/small]",
    "        methods: [GET]",
    ""
  ].join("\n")

interface Started {
  readonly runtime: Runtime
  readonly url: string
  readonly port: number
  readonly home: string
  readonly op: string
  readonly agent: string
}

const ENV = [
  "AAP_PROXY_UPSTREAM_CA_FILE",
  "AAP_PROXY_CA_CERT",
  "AAP_PROXY_CA_KEY",
  "AAP_PROXY_TUNNEL_CHECK_MS",
  "AAP_PROXY_MAX_REQUESTS"
]

/** An embedded broker with `env` set while its layers are built; the key stored; an agent token. */
const startBroker = async (
  catalog: string,
  env: Record<string, string>,
  logs: Array<string>,
  configProvider?: ConfigProvider.ConfigProvider
): Promise<Started> => {
  const home = tempHome()
  const catalogPath = Path.join(home, "catalog.yaml")
  Fs.writeFileSync(catalogPath, catalog)
  for (const name of ENV) delete process.env[name]
  Object.assign(process.env, env)
  const config = BrokerConfig.make({
    home,
    listen: { host: "127.0.0.1", port: 0 },
    catalogPath,
    requestTimeout: Duration.seconds(10),
    logLevel: "debug"
  })
  const layer = Broker.layer(config, { logSink: (line) => logs.push(line) }) as Layer.Layer<
    Broker.BrokerInfo | Broker.BrokerBootstrap
  >
  const runtime: Runtime = ManagedRuntime.make(
    configProvider === undefined ? layer : layer.pipe(Layer.provide(Layer.setConfigProvider(configProvider)))
  )
  const { url, port } = await runtime.runPromise(Broker.BrokerInfo)
  for (const name of ENV) delete process.env[name]
  const boot = await runtime.runPromise(Broker.BrokerBootstrap)
  const op = Fs.readFileSync(boot.tokenFile, "utf8").trim()
  const run = <A>(e: Effect.Effect<A>) => Effect.runPromise(e)
  const put = await run(
    call(url, "PUT", "/v1/wallets/codex/secrets/llm%2Fapi-key", {
      token: op,
      body: JSON.stringify({ value: KEY })
    })
  )
  assert.include([200, 201], put.status, put.text)
  const code = (await run(post(url, "/v1/agents/codex/link-codes", op))).json.code as string
  const agent = (await run(post(url, "/v1/link-codes/redeem", undefined, { code }))).json.token as string
  return { runtime, url, port, home, op, agent }
}

/** A session of `capability` and its delivered proxy token. */
const openSession = async (b: Started, capability = "llm", ttlSeconds?: number) => {
  const session = await Effect.runPromise(
    post(b.url, "/v1/sessions", b.agent, { capability, ...(ttlSeconds === undefined ? {} : { ttlSeconds }) })
  )
  assert.strictEqual(session.status, 201, session.text)
  const id = session.json.id as string
  const delivered = await Effect.runPromise(post(b.url, `/v1/sessions/${id}/credentials`, b.agent, {}))
  assert.strictEqual(delivered.status, 200, delivered.text)
  const credential = delivered.json.credential as Record<string, string>
  assert.strictEqual(credential._tag, "proxy")
  return { id, token: credential.token as string, delivered: delivered.text }
}

/** `proxy.request` records as the operator reads them. */
const proxyRecords = async (b: Started): Promise<Array<Record<string, unknown>>> => {
  const r = await Effect.runPromise(
    call(b.url, "GET", "/v1/audit?action=proxy.request&limit=1000", { token: b.op })
  )
  assert.strictEqual(r.status, 200, r.text)
  // `events` is the audit API's field (contexts/audit Api.ts); a missing one must fail, not read as "none".
  assert.isArray(r.json.events, r.text)
  return (r.json.events as Array<Record<string, unknown>>).filter((e) => e.action === "proxy.request")
}

/** Session `s`'s CONNECT (tunnel) records on broker `b`, oldest first. */
const tunnelRecords = async (b: Started, s: Session) =>
  (await proxyRecords(b)).filter(
    (e) => e.session === s.id && (e.details as Record<string, unknown>)?.method === "CONNECT"
  )

/** Waits for `run` (a curl the broker must cut: its upstream never ends) to fail, then for the tunnel's record. */
const cutTunnel = async (b: Started, s: Session, run: { readonly done: Promise<Curl> }) => {
  const { code, stdout, stderr } = await run.done
  received.push(stdout, stderr)
  assert.notStrictEqual(code, 0, "curl exits only because the broker cut the tunnel")
  return eventually(async () => (await tunnelRecords(b, s))[0])
}

/** Waits (by polling; bounded by the test timeout) until `find` returns a record. */
const eventually = async <A>(find: () => Promise<A | undefined>): Promise<A> => {
  for (;;) {
    const found = await find()
    if (found !== undefined) return found
    await new Promise((r) => setTimeout(r, 50))
  }
}

let upstream: Upstream | undefined
let blind: Awaited<ReturnType<typeof startBlind>> | undefined
let tls: Tls
let dir: string
/** The upstream's self-signed certificate, for curl's `--cacert` on blind tunnels. */
let upstreamCa: string
let ca: { readonly cert: string; readonly key: string }
let intercepting: Started
const logs: Array<string> = []
/** Everything an agent received (bodies, curl output) — the key must be in none of it. */
const received: Array<string> = []
const tokens: Array<string> = []
const runtimes: Array<Runtime> = []

beforeAll(async () => {
  tls = makeTls()
  upstream = await startUpstream(tls)
  blind = await startBlind(tls)
  dir = tempHome()
  upstreamCa = Path.join(dir, "upstream-ca.pem")
  Fs.writeFileSync(upstreamCa, tls.cert)
  // An operator CA (EC P-256, CA:TRUE, keyCertSign); the key file is mode 0600.
  ca = makeCert(dir, "operator-ca", "/CN=aap test operator CA", CA_EXTENSIONS)
  intercepting = await startBroker(
    catalogYaml(upstream.port, blind.port),
    {
      AAP_PROXY_UPSTREAM_CA_FILE: upstreamCa,
      AAP_PROXY_CA_CERT: ca.cert,
      AAP_PROXY_CA_KEY: ca.key,
      AAP_PROXY_TUNNEL_CHECK_MS: "100"
    },
    logs
  )
  runtimes.push(intercepting.runtime)
}, 60_000)

afterAll(async () => {
  for (const r of runtimes) await r.dispose()
  upstream?.server.close()
  blind?.server.close()
})

describe("forward proxy (HTTPS_PROXY / CONNECT) in the embedded broker", () => {
  it("curl checks are against a real curl", async () => {
    const v = await curl(["--version"])
    assert.strictEqual(v.code, 0)
    assert.match(v.stdout, /^curl \d+\.\d+/)
  })

  it("blind tunnel to a proxy.connect host: bytes pass untouched, one CONNECT record (host, bytes, duration)", async () => {
    const b = intercepting
    const s = await openSession(b)
    tokens.push(s.token)
    const before = blind?.seen.length ?? 0
    const r = await curl([...via(b, s, upstreamCa), `https://127.0.0.1:${blind?.port}/hello`])
    received.push(r.stdout, r.stderr)
    assert.strictEqual(r.code, 0, r.stderr)
    assert.strictEqual(r.stdout, "blind-ok")
    const headers = blind?.seen.slice(before) ?? []
    assert.strictEqual(headers.length, 1)
    // Nothing is injected into a blind tunnel: no key, no token, no proxy credentials.
    assert.notInclude(JSON.stringify(headers), KEY)
    assert.notInclude(JSON.stringify(headers), s.token)
    assert.isUndefined(headers[0]?.authorization)
    const record = await eventually(async () =>
      (await proxyRecords(b)).find(
        (e) => e.session === s.id && (e.details as Record<string, unknown>)?.method === "CONNECT"
      )
    )
    const details = record.details as Record<string, unknown>
    assert.strictEqual(record.outcome, "success")
    assert.strictEqual(details.mode, "blind")
    assert.strictEqual(details.upstream, `127.0.0.1:${blind?.port}`)
    assert.isAbove(details.bytesIn as number, 0)
    assert.isAbove(details.bytesOut as number, 0)
    assert.isNumber(details.durationMs)
    assert.notProperty(details, "path")
  })

  it("an allowed blind host that cannot be reached: 502 UpstreamUnavailable, the tunnel audited as an error", async () => {
    const b = intercepting
    const s = await openSession(b)
    tokens.push(s.token)
    const reply = await raw(b.port, connectAs("127.0.0.1:1", s))
    received.push(reply)
    assert.match(reply, /^HTTP\/1\.1 502 /)
    assert.include(reply, '"_tag":"UpstreamUnavailable"')
    const record = await eventually(async () =>
      (await proxyRecords(b)).find(
        (e) => e.session === s.id && (e.details as Record<string, unknown>)?.method === "CONNECT"
      )
    )
    assert.strictEqual(record.outcome, "error")
    assert.strictEqual(record.reason, "upstream-unreachable")
    assert.strictEqual((record.details as Record<string, unknown>).bytesIn, 0)
  })

  it("a host outside the allow-list: 403 HostNotAllowed, audited as denied", async () => {
    const b = intercepting
    const s = await openSession(b)
    tokens.push(s.token)
    const r = await curl(["--proxy", b.url, "--proxy-user", `${s.id}:${s.token}`, "https://127.0.0.2:9/"])
    received.push(r.stdout, r.stderr)
    assert.notStrictEqual(r.code, 0)
    assert.include(r.stderr, "403")
    const reply = await raw(b.port, connectAs("127.0.0.2:9", s, "Host: 127.0.0.2:9\r\n"))
    received.push(reply)
    assert.match(reply, /^HTTP\/1\.1 403 /)
    const body = JSON.parse(reply.slice(reply.indexOf("\r\n\r\n") + 4)) as Record<string, unknown>
    assert.strictEqual(body._tag, "HostNotAllowed")
    assert.strictEqual(body.host, "127.0.0.2:9")
    const denied = (await proxyRecords(b)).filter((e) => e.session === s.id && e.outcome === "denied")
    assert.strictEqual(denied.length, 2)
    assert.strictEqual(denied[0]?.reason, "host-not-allowed")
    assert.strictEqual((denied[0]?.details as Record<string, unknown>)?.upstream, "127.0.0.2:9")
  })

  it("a capability without proxy.connect is not usable as a forward proxy (403, audited)", async () => {
    const b = intercepting
    const s = await openSession(b, "base-url-only")
    tokens.push(s.token)
    const reply = await raw(b.port, connectAs(`localhost:${upstream?.port}`, s))
    received.push(reply)
    assert.match(reply, /^HTTP\/1\.1 403 /)
    assert.include(reply, '"_tag":"HostNotAllowed"')
    const denied = (await proxyRecords(b)).filter((e) => e.session === s.id)
    assert.strictEqual(denied[0]?.reason, "forward-off")
  })

  it("no or bad Proxy-Authorization: 407 with Proxy-Authenticate, nothing audited", async () => {
    const b = intercepting
    const s = await openSession(b)
    tokens.push(s.token)
    const target = `https://127.0.0.1:${blind?.port}/hello`
    const none = await curl(["--proxy", b.url, "--cacert", upstreamCa, target])
    received.push(none.stdout, none.stderr)
    assert.notStrictEqual(none.code, 0)
    assert.include(none.stderr, "407")
    const forged = `aap_pxy_${"A".repeat(56)}`
    const bad = await curl([
      "--proxy",
      b.url,
      "--proxy-user",
      `${s.id}:${forged}`,
      "--cacert",
      upstreamCa,
      target
    ])
    received.push(bad.stdout, bad.stderr)
    assert.notStrictEqual(bad.code, 0)
    assert.include(bad.stderr, "407")
    for (const auth of [
      undefined,
      basic(s.id, forged),
      basic(s.id, ""),
      "Bearer x",
      basic("ses_nope", s.token)
    ]) {
      const reply = await raw(
        b.port,
        `CONNECT 127.0.0.1:${blind?.port} HTTP/1.1\r\n${auth === undefined ? "" : `Proxy-Authorization: ${auth}\r\n`}\r\n`
      )
      received.push(reply)
      assert.match(reply, /^HTTP\/1\.1 407 /, reply)
      assert.match(reply, /\r\nproxy-authenticate: Basic realm="aap-proxy"\r\n/i)
      assert.include(reply, '"_tag":"Unauthorized"')
      assert.notInclude(reply, forged)
    }
    assert.deepStrictEqual(
      (await proxyRecords(b)).filter((e) => e.session === s.id),
      []
    )
  })

  it("revoking the session cuts an open blind tunnel", async () => {
    const b = intercepting
    const s = await openSession(b)
    tokens.push(s.token)
    // Resolves once the tunnel is open and the response has started.
    const run = await curlUntil(
      [...via(b, s, upstreamCa), `https://127.0.0.1:${blind?.port}/hang`],
      "first-chunk"
    )
    const revoked = await Effect.runPromise(post(b.url, `/v1/sessions/${s.id}/revoke`, b.agent, {}))
    assert.strictEqual(revoked.status, 200, revoked.text)
    const record = await cutTunnel(b, s, run)
    assert.strictEqual(record.outcome, "error")
    assert.strictEqual(record.reason, "session-ended")
    // And a new CONNECT with the same token is refused.
    const again = await raw(b.port, connectAs(`127.0.0.1:${blind?.port}`, s))
    received.push(again)
    assert.match(again, /^HTTP\/1\.1 409 /)
    assert.include(again, '"_tag":"SessionNotActive"')
  })

  it("interception with the operator CA: the upstream gets the key, curl never does, each inner request is audited", async () => {
    const b = intercepting
    const s = await openSession(b)
    tokens.push(s.token)
    const seenBefore = upstream?.seen.length ?? 0
    const proxy = via(b, s, ca.cert)
    const ok = await curl([...proxy, "-i", `https://localhost:${upstream?.port}/api/v1/small`])
    received.push(ok.stdout, ok.stderr)
    assert.strictEqual(ok.code, 0, ok.stderr)
    assert.match(ok.stdout, /HTTP\/1\.1 200/)
    assert.include(ok.stdout, '{"ok":true}')
    const seen = upstream?.seen.slice(seenBefore) ?? []
    assert.strictEqual(seen.length, 1)
    assert.strictEqual(seen[0]?.authorization, `Bearer ${KEY}`)
    assert.notInclude(JSON.stringify(seen), s.token)
    assert.isUndefined(seen[0]?.["proxy-authorization"])
    assert.isUndefined(seen[0]?.["x-aap-proxy-token"])

    // The leaf certificate curl accepted was minted by the operator CA, for localhost.
    const issuer = await curl([
      ...proxy,
      "-v",
      "-o",
      "/dev/null",
      `https://localhost:${upstream?.port}/api/v1/small`
    ])
    received.push(issuer.stdout, issuer.stderr)
    assert.include(issuer.stderr, "issuer: CN=aap test operator CA")
    // Without the CA curl refuses the minted certificate (what a pinning client would do).
    const untrusted = await curl([
      ...via(b, s, upstreamCa),
      `https://localhost:${upstream?.port}/api/v1/small`
    ])
    received.push(untrusted.stdout, untrusted.stderr)
    assert.strictEqual(untrusted.code, 60, untrusted.stderr)

    // The allow-lists apply inside the tunnel.
    const refused = await curl([...proxy, `https://localhost:${upstream?.port}/api/v1/keys`])
    received.push(refused.stdout, refused.stderr)
    assert.include(refused.stdout, '"_tag":"PathNotAllowed"')
    const traversal = await curl([
      ...proxy,
      "--path-as-is",
      `https://localhost:${upstream?.port}/api/v1/small/../../admin`
    ])
    received.push(traversal.stdout, traversal.stderr)
    assert.include(traversal.stdout, '"_tag":"InvalidProxyPath"')

    const records = await eventually(async () => {
      const r = (await proxyRecords(b)).filter((e) => e.session === s.id)
      return r.length >= 4 ? r : undefined
    })
    const small = records.filter((e) => (e.details as Record<string, unknown>)?.path === "/api/v1/small")
    assert.strictEqual(small.filter((e) => e.outcome === "success").length, 2)
    const first = small[0]?.details as Record<string, unknown>
    assert.strictEqual(first.method, "GET")
    assert.strictEqual(first.status, 200)
    assert.strictEqual(first.upstream, `localhost:${upstream?.port}`)
    const denied = records.filter((e) => e.outcome === "denied").map((e) => e.reason)
    assert.include(denied, "path-not-allowed")
  })

  it("a catalog reload that drops a blind host cuts its open tunnel (catalog-changed)", async () => {
    if (upstream === undefined || blind === undefined) throw new Error("no upstream")
    const reloadLogs: Array<string> = []
    const b = await startBroker(
      catalogYaml(upstream.port, blind.port),
      { AAP_PROXY_UPSTREAM_CA_FILE: upstreamCa, AAP_PROXY_TUNNEL_CHECK_MS: "100" },
      reloadLogs
    )
    runtimes.push(b.runtime)
    const s = await openSession(b)
    tokens.push(s.token)
    const run = await curlUntil(
      [...via(b, s, upstreamCa), `https://127.0.0.1:${blind.port}/hang`],
      "first-chunk"
    )
    // the same catalog with the blind host gone from `connect`
    Fs.writeFileSync(
      Path.join(b.home, "catalog.yaml"),
      catalogYaml(upstream.port, blind.port).replace(`"127.0.0.1:${blind.port}", `, "")
    )
    const reloaded = await Effect.runPromise(post(b.url, "/v1/catalog/reload", b.op, {}))
    assert.strictEqual(reloaded.status, 200, reloaded.text)
    const record = await cutTunnel(b, s, run)
    assert.strictEqual(record.outcome, "error")
    assert.strictEqual(record.reason, "catalog-changed")
    // and a new CONNECT to that host is refused
    const again = await raw(b.port, connectAs(`127.0.0.1:${blind.port}`, s))
    received.push(again)
    assert.match(again, /^HTTP\/1\.1 403 /)
    logs.push(...reloadLogs)
  })

  it("blind tunnels draw on the session's budgets: a tunnel is cut at the byte budget, one request each", async () => {
    if (upstream === undefined || blind === undefined) throw new Error("no upstream")
    const budgetLogs: Array<string> = []
    const b = await startBroker(
      catalogYaml(upstream.port, blind.port),
      { AAP_PROXY_UPSTREAM_CA_FILE: upstreamCa, AAP_PROXY_MAX_BYTES: "50000", AAP_PROXY_MAX_REQUESTS: "2" },
      budgetLogs
    )
    runtimes.push(b.runtime)
    // 1. bytes: a 200 kB download through a blind tunnel stops at the 50 kB budget
    const s = await openSession(b)
    tokens.push(s.token)
    const big = await curl([
      ...via(b, s, upstreamCa),
      "-o",
      "/dev/null",
      "-w",
      "%{size_download}",
      `https://127.0.0.1:${blind.port}/big`
    ])
    received.push(big.stdout, big.stderr)
    assert.notStrictEqual(big.code, 0, "the transfer was cut")
    assert.isBelow(Number(big.stdout), 50_000)
    const cut = await eventually(async () =>
      (await proxyRecords(b)).find(
        (e) => e.session === s.id && (e.details as Record<string, unknown>)?.method === "CONNECT"
      )
    )
    assert.strictEqual(cut.outcome, "error")
    assert.strictEqual(cut.reason, "budget:bytes")
    const moved = cut.details as Record<string, number>
    assert.isAtMost(Number(moved.bytesIn) + Number(moved.bytesOut), 50_000)
    // the spent session opens no more tunnels
    const spent = await raw(b.port, connectAs(`127.0.0.1:${blind.port}`, s))
    received.push(spent)
    assert.match(spent, /^HTTP\/1\.1 429 /)
    assert.include(spent, '"_tag":"ProxyBudgetExceeded"')
    // 2. requests: each tunnel takes one; the third CONNECT of a fresh session is refused
    const t = await openSession(b)
    tokens.push(t.token)
    for (let i = 0; i < 2; i++) {
      const ok = await curl([...via(b, t, upstreamCa), `https://127.0.0.1:${blind.port}/hello`])
      received.push(ok.stdout, ok.stderr)
      assert.strictEqual(ok.stdout, "blind-ok", ok.stderr)
    }
    const third = await raw(b.port, connectAs(`127.0.0.1:${blind.port}`, t))
    received.push(third)
    assert.match(third, /^HTTP\/1\.1 429 /)
    const denied = (await proxyRecords(b)).filter((e) => e.session === t.id && e.outcome === "denied")
    assert.deepStrictEqual(
      denied.map((e) => e.reason),
      ["budget:requests"]
    )
    logs.push(...budgetLogs)
  })

  it("the session deadline cuts an open blind tunnel even between checks (session-expired)", async () => {
    if (upstream === undefined || blind === undefined) throw new Error("no upstream")
    const deadlineLogs: Array<string> = []
    // checks a minute apart: only the deadline timer can cut this tunnel in time
    const b = await startBroker(
      catalogYaml(upstream.port, blind.port),
      { AAP_PROXY_UPSTREAM_CA_FILE: upstreamCa, AAP_PROXY_TUNNEL_CHECK_MS: "60000" },
      deadlineLogs
    )
    runtimes.push(b.runtime)
    const s = await openSession(b, "llm", 4)
    tokens.push(s.token)
    const started = Date.now()
    const run = await curlUntil(
      [...via(b, s, upstreamCa), `https://127.0.0.1:${blind.port}/hang`],
      "first-chunk"
    )
    const record = await cutTunnel(b, s, run)
    const tookMs = Date.now() - started
    assert.strictEqual(record.outcome, "error")
    assert.strictEqual(record.reason, "session-expired")
    assert.isBelow(tookMs, 30_000, "cut at the 4 s deadline, long before the next check")
    logs.push(...deadlineLogs)
  })

  it("every intercepted tunnel is audited when it closes, with the requests made inside, none included", async () => {
    const b = intercepting
    const s = await openSession(b)
    tokens.push(s.token)
    const tunnelsOf = () => tunnelRecords(b, s)
    // 1. a tunnel used for one request
    const one = await curl([...via(b, s, ca.cert), `https://localhost:${upstream?.port}/api/v1/small`])
    received.push(one.stdout, one.stderr)
    assert.strictEqual(one.code, 0, one.stderr)
    const first = await eventually(async () => (await tunnelsOf())[0])
    assert.strictEqual(first.outcome, "success")
    assert.deepInclude(first.details as Record<string, unknown>, {
      method: "CONNECT",
      mode: "intercept",
      upstream: `localhost:${upstream?.port}`,
      requests: 1
    })
    assert.isAbove(Number((first.details as Record<string, unknown>).bytesIn), 0)
    // 2. a tunnel that completes the TLS handshake and closes without a request
    const socket = Net.connect({ host: "127.0.0.1", port: b.port })
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject)
      socket.once("connect", () => socket.write(connectAs(`localhost:${upstream?.port}`, s)))
      socket.once("data", (c: Buffer) => {
        received.push(c.toString("utf8"))
        assert.match(c.toString("utf8"), /^HTTP\/1\.1 200 /)
        const secure = NodeTls.connect({
          socket,
          servername: "localhost",
          ca: Fs.readFileSync(ca.cert, "utf8")
        })
        secure.once("secureConnect", () => secure.end())
        secure.once("error", reject)
        secure.once("close", () => resolve())
      })
    })
    const idle = await eventually(async () => {
      const all = await tunnelsOf()
      return all.length >= 2 ? all[1] : undefined
    })
    assert.strictEqual(idle.outcome, "success")
    assert.deepInclude(idle.details as Record<string, unknown>, { mode: "intercept", requests: 0 })
    // 3. a client that does not trust the operator CA: refused at the handshake, on the record
    const refused = await curl([
      "--proxy",
      b.url,
      "--proxy-user",
      `${s.id}:${s.token}`,
      `https://localhost:${upstream?.port}/api/v1/small`
    ])
    received.push(refused.stdout, refused.stderr)
    assert.notStrictEqual(refused.code, 0)
    const failed = await eventually(async () => {
      const all = await tunnelsOf()
      return all.length >= 3 ? all[2] : undefined
    })
    assert.strictEqual(failed.outcome, "error")
    assert.strictEqual(failed.reason, "tls-handshake-failed")
    assert.deepInclude(failed.details as Record<string, unknown>, { mode: "intercept", requests: 0 })
    for (const r of [first, idle, failed]) assert.notInclude(JSON.stringify(r), s.token)
  })

  it("interception streams server-sent events chunk by chunk and cuts the tunnel on revocation", async () => {
    const b = intercepting
    const s = await openSession(b)
    tokens.push(s.token)
    // The first event reaches curl while the upstream still holds the last one back.
    const run = await curlUntil(
      [
        ...via(b, s, ca.cert),
        "-X",
        "POST",
        "-d",
        "{}",
        `https://localhost:${upstream?.port}/api/v1/chat/completions`
      ],
      '"delta":"one"'
    )
    assert.notInclude(run.stdout(), "[DONE]")
    const revoked = await Effect.runPromise(post(b.url, `/v1/sessions/${s.id}/revoke`, b.agent, {}))
    assert.strictEqual(revoked.status, 200, revoked.text)
    const { code, stdout, stderr } = await run.done
    received.push(stdout, stderr)
    assert.notStrictEqual(code, 0)
    assert.notInclude(stdout, "[DONE]")
    upstream?.releaseLast()
  })

  it("absolute-form requests (HTTP_PROXY) are refused: 407 without credentials, 403 with", async () => {
    const b = intercepting
    const s = await openSession(b)
    tokens.push(s.token)
    const target = `http://127.0.0.1:${blind?.port}/hello`
    const none = await curl(["--proxy", b.url, "-i", target])
    received.push(none.stdout, none.stderr)
    assert.match(none.stdout, /^HTTP\/1\.1 407 /)
    assert.match(none.stdout, /proxy-authenticate: Basic realm="aap-proxy"/i)
    const withCreds = await curl(["--proxy", b.url, "--proxy-user", `${s.id}:${s.token}`, "-i", target])
    received.push(withCreds.stdout, withCreds.stderr)
    assert.match(withCreds.stdout, /^HTTP\/1\.1 403 /)
    assert.include(withCreds.stdout, '"_tag":"HostNotAllowed"')
    assert.include(withCreds.stdout, "absolute-form")
    // The same with HTTP_PROXY in curl's environment.
    const viaEnv = await curl(["-i", target], { http_proxy: `http://${s.id}:${s.token}@127.0.0.1:${b.port}` })
    received.push(viaEnv.stdout, viaEnv.stderr)
    assert.match(viaEnv.stdout, /^HTTP\/1\.1 403 /)
  })

  it("HTTPS_PROXY in curl's environment works like --proxy", async () => {
    const b = intercepting
    const s = await openSession(b)
    tokens.push(s.token)
    const r = await curl(["--cacert", ca.cert, `https://localhost:${upstream?.port}/api/v1/small`], {
      HTTPS_PROXY: `http://${s.id}:${s.token}@127.0.0.1:${b.port}`
    })
    received.push(r.stdout, r.stderr)
    assert.strictEqual(r.code, 0, r.stderr)
    assert.strictEqual(r.stdout, '{"ok":true}')
  })

  it("the broker serves the operator CA certificate, never its key", async () => {
    const b = intercepting
    const r = await Effect.runPromise(call(b.url, "GET", "/v1/forward-proxy/ca.pem"))
    assert.strictEqual(r.status, 200)
    assert.strictEqual(r.text.trim(), Fs.readFileSync(ca.cert, "utf8").trim())
    assert.notInclude(r.text, "PRIVATE KEY")
  })

  it("the AAP_PROXY_* settings, CA files included, are read once per broker start", async () => {
    if (upstream === undefined || blind === undefined) throw new Error("no upstream")
    const reads = new Map<string, number>()
    const counting = ConfigProvider.fromEnv().pipe(
      ConfigProvider.mapInputPath((name) => {
        if (name.startsWith("AAP_PROXY_")) reads.set(name, (reads.get(name) ?? 0) + 1)
        return name
      })
    )
    const b = await startBroker(
      catalogYaml(upstream.port, blind.port),
      { AAP_PROXY_UPSTREAM_CA_FILE: upstreamCa, AAP_PROXY_CA_CERT: ca.cert, AAP_PROXY_CA_KEY: ca.key },
      [],
      counting
    )
    runtimes.push(b.runtime)
    for (const name of [
      "AAP_PROXY_CA_CERT",
      "AAP_PROXY_CA_KEY",
      "AAP_PROXY_UPSTREAM_CA_FILE",
      "AAP_PROXY_MAX_REQUESTS"
    ]) {
      assert.strictEqual(reads.get(name), 1, `${name} read ${reads.get(name)} times`)
    }
    // and both modes work from that one reading: interception on, the CA served
    const r = await Effect.runPromise(call(b.url, "GET", "/v1/forward-proxy/ca.pem"))
    assert.strictEqual(r.status, 200)
    assert.strictEqual(r.text.trim(), Fs.readFileSync(ca.cert, "utf8").trim())
  })

  it("without an operator CA: CONNECT to the upstream host is refused, blind tunnels work, no CA is served", async () => {
    if (upstream === undefined || blind === undefined) throw new Error("no upstream")
    const plainLogs: Array<string> = []
    const b = await startBroker(
      catalogYaml(upstream.port, blind.port),
      { AAP_PROXY_UPSTREAM_CA_FILE: upstreamCa },
      plainLogs
    )
    runtimes.push(b.runtime)
    const s = await openSession(b)
    tokens.push(s.token)
    const up = await raw(b.port, connectAs(`localhost:${upstream.port}`, s))
    received.push(up)
    assert.match(up, /^HTTP\/1\.1 403 /)
    assert.include(up, "AAP_PROXY_CA_CERT")
    const denied = (await proxyRecords(b)).filter((e) => e.session === s.id)
    assert.strictEqual(denied[0]?.reason, "interception-off")
    const r = await curl([...via(b, s, upstreamCa), `https://127.0.0.1:${blind.port}/hello`])
    received.push(r.stdout, r.stderr)
    assert.strictEqual(r.stdout, "blind-ok")
    const caReply = await Effect.runPromise(call(b.url, "GET", "/v1/forward-proxy/ca.pem"))
    assert.strictEqual(caReply.status, 404)
    assert.strictEqual(caReply.json._tag, "NotFound")
    logs.push(...plainLogs)
    for (const line of plainLogs) assert.notInclude(line, KEY)
    assert.notInclude(readTree(Path.join(b.home, "audit")), KEY)
  })

  it("the session's request budget applies inside an intercepted tunnel (429 ProxyBudgetExceeded)", async () => {
    if (upstream === undefined || blind === undefined) throw new Error("no upstream")
    const budgetLogs: Array<string> = []
    const b = await startBroker(
      catalogYaml(upstream.port, blind.port),
      {
        AAP_PROXY_UPSTREAM_CA_FILE: upstreamCa,
        AAP_PROXY_CA_CERT: ca.cert,
        AAP_PROXY_CA_KEY: ca.key,
        AAP_PROXY_MAX_REQUESTS: "2"
      },
      budgetLogs
    )
    runtimes.push(b.runtime)
    const s = await openSession(b)
    tokens.push(s.token)
    const url = `https://localhost:${upstream.port}/api/v1/small`
    // Three requests in one curl run (curl reuses its tunnel when it can); the third is over budget.
    const r = await curl([...via(b, s, ca.cert), "-w", " %{http_code}\n", url, url, url])
    received.push(r.stdout, r.stderr)
    assert.strictEqual(r.code, 0, r.stderr)
    const lines = r.stdout.trim().split("\n")
    assert.deepStrictEqual(
      lines.map((l) => l.slice(l.lastIndexOf(" ") + 1)),
      ["200", "200", "429"]
    )
    assert.include(lines[2], '"_tag":"ProxyBudgetExceeded"')
    logs.push(...budgetLogs)
  })

  it("canaries: neither the key nor a proxy token is in a log line, an error body, an audit record or the agent's output", async () => {
    assert.isAbove(tokens.length, 5)
    assert.isAbove(logs.length, 0)
    const audit = readTree(Path.join(intercepting.home, "audit"))
    assert.include(audit, "proxy.request")
    const served = await Effect.runPromise(
      call(intercepting.url, "GET", "/v1/audit?limit=1000", { token: intercepting.op })
    )
    for (const secret of [KEY, ...tokens]) {
      for (const line of logs) assert.notInclude(line, secret)
      assert.notInclude(audit, secret)
      assert.notInclude(served.text, secret)
    }
    for (const r of received) assert.notInclude(r, KEY)
    // Refusals never echo the presented credentials.
    for (const r of received.filter((t) => t.includes('"_tag"'))) {
      for (const token of tokens) assert.notInclude(r, token)
    }
  })
})
