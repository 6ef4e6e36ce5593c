/**
 * `aap exec --proxy` for a capability in the forward-proxy mode (ADR 0081/0082): the built
 * binary against `aap serve` with an operator CA, running the real curl, which knows nothing of
 * aap and only follows HTTPS_PROXY and CURL_CA_BUNDLE. The upstream (a local HTTPS server in
 * this process) gets the key; nothing the agent or the logs see holds it.
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import type * as Http from "node:http"
import * as Https from "node:https"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { afterAll, beforeAll } from "vitest"
import { aap, aapLive, type Result, type RunningBroker, startBroker, tempDir } from "./support.js"

const CURL = "/usr/bin/curl"
const KEY = "sk-forward-canary-3c1f9b7e5d"

const openssl = (args: ReadonlyArray<string>) =>
  ChildProcess.execFileSync("openssl", args, { stdio: "ignore" })

/** A self-signed certificate (the upstream's) or a CA (the operator's), EC P-256, one day. */
const makeCert = (dir: string, name: string, subject: string, extra: ReadonlyArray<string>) => {
  const cert = Path.join(dir, `${name}.pem`)
  const key = Path.join(dir, `${name}.key`)
  openssl([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    key,
    "-out",
    cert,
    "-days",
    "1",
    "-subj",
    subject,
    ...extra.flatMap((e) => ["-addext", e])
  ])
  Fs.chmodSync(key, 0o600)
  return { cert, key }
}

let broker: RunningBroker
let upstream: Https.Server
let upstreamPort = 0
const seen: Array<Http.IncomingHttpHeaders> = []
let caPem = ""
let agent: Record<string, string>
const outputs: Array<string> = []

const done = async (args: ReadonlyArray<string>): Promise<Result> => {
  const r = await aapLive(args, agent).done
  outputs.push(r.stdout, r.stderr)
  return r
}

beforeAll(async () => {
  const dir = tempDir("aap-cli-forward-")
  const tls = makeCert(dir, "upstream", "/CN=localhost", ["subjectAltName=DNS:localhost,IP:127.0.0.1"])
  const ca = makeCert(dir, "operator-ca", "/CN=aap cli test CA", [
    "basicConstraints=critical,CA:TRUE",
    "keyUsage=critical,keyCertSign,cRLSign"
  ])
  caPem = Fs.readFileSync(ca.cert, "utf8")
  upstream = Https.createServer(
    { key: Fs.readFileSync(tls.key), cert: Fs.readFileSync(tls.cert) },
    (req, res) => {
      seen.push(req.headers)
      req.resume()
      const ok = req.headers.authorization === `Bearer ${KEY}`
      res.writeHead(ok ? 200 : 401, { "content-type": "application/json" })
      res.end(JSON.stringify({ ok, path: req.url }))
    }
  )
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r))
  const address = upstream.address()
  upstreamPort = typeof address === "object" && address !== null ? address.port : 0
  const catalog = Path.join(dir, "catalog.yaml")
  const capability = (id: string, env: string, connect: boolean) => [
    `  - id: ${id}`,
    "    tier: low",
    "    agents: [codex]",
    "    ttl: { default: 15m, max: 1h }",
    "    backing:",
    "      type: bearer-token",
    "      secret: llm/api-key",
    `      env: ${env}`,
    "      proxy:",
    // The broker listens on 127.0.0.1 (in NO_PROXY); the upstream is reached as localhost.
    `        upstream: https://localhost:${upstreamPort}/api`,
    "        header: Authorization",
    "        scheme: Bearer",
    "        paths: [/api/v1/*]",
    "        methods: [GET]",
    ...(connect ? ["        connect: []"] : [])
  ]
  Fs.writeFileSync(
    catalog,
    [
      "schemaVersion: 1",
      "agents:",
      "  - { id: codex, wallet: codex }",
      "operators:",
      "  - { id: alice }",
      "capabilities:",
      ...capability("llm", "LLM_API_KEY", true),
      ...capability("llm-base-url", "OTHER_API_KEY", false),
      ""
    ].join("\n")
  )
  broker = await startBroker({
    AAP_CATALOG: catalog,
    AAP_LOG_LEVEL: "debug",
    AAP_PROXY_UPSTREAM_CA_FILE: tls.cert,
    AAP_PROXY_CA_CERT: ca.cert,
    AAP_PROXY_CA_KEY: ca.key
  })
  const operator = {
    AAP_URL: broker.url,
    AAP_HOME: broker.home,
    XDG_CONFIG_HOME: tempDir("aap-cli-fwd-opxdg-")
  }
  const put = aap(["secret", "put", "codex/llm/api-key", "--json"], operator, { input: KEY })
  assert.strictEqual(put.code, 0, put.stderr)
  const invite = JSON.parse(aap(["agent", "invite", "codex", "--json"], operator).stdout)
  agent = {
    AAP_URL: broker.url,
    AAP_HOME: tempDir("aap-cli-fwd-agenthome-"),
    XDG_CONFIG_HOME: tempDir("aap-cli-fwd-xdg-")
  }
  const login = aap(["login", "--code", invite.code], agent)
  assert.strictEqual(login.code, 0, login.stderr)
}, 90_000)

afterAll(async () => {
  const stopped = await broker?.stop()
  upstream?.close()
  assert.strictEqual(stopped?.code, 0, stopped?.stderr)
})

describe("aap exec --proxy, forward mode", () => {
  it("curl through HTTPS_PROXY with the broker's CA: the upstream gets the key, curl prints the answer", async () => {
    const before = seen.length
    const r = await done([
      "exec",
      "--proxy",
      "llm",
      "--",
      CURL,
      "-sS",
      "--max-time",
      "30",
      `https://localhost:${upstreamPort}/api/v1/models`
    ])
    assert.strictEqual(r.code, 0, r.stderr)
    assert.deepStrictEqual(JSON.parse(r.stdout), { ok: true, path: "/api/v1/models" })
    assert.strictEqual(seen.length, before + 1)
    assert.strictEqual(seen.at(-1)?.authorization, `Bearer ${KEY}`)
    assert.isUndefined(seen.at(-1)?.["proxy-authorization"])
  })

  it("sets HTTPS_PROXY, NO_PROXY and the CA bundle variables (masked in output, files removed after CMD)", async () => {
    const script = [
      `const fs = require("node:fs")`,
      `const e = process.env`,
      `const ca = ${JSON.stringify(caPem.trim())}`,
      "console.log(JSON.stringify({",
      `  proxy: /^http:\\/\\/ses_[^:]+:aap_pxy_[^@]+@127\\.0\\.0\\.1:\\d+$/.test(e.HTTPS_PROXY),`,
      "  lower: e.https_proxy === e.HTTPS_PROXY,",
      "  httpProxy: e.HTTP_PROXY === undefined && e.http_proxy === undefined,",
      `  noProxy: e.NO_PROXY.split(",").includes("127.0.0.1") && e.no_proxy === e.NO_PROXY,`,
      "  bundle: fs.readFileSync(e.CURL_CA_BUNDLE, 'utf8').includes(ca) && fs.readFileSync(e.CURL_CA_BUNDLE, 'utf8').split('BEGIN CERTIFICATE').length > 10,",
      "  same: e.SSL_CERT_FILE === e.CURL_CA_BUNDLE && e.REQUESTS_CA_BUNDLE === e.CURL_CA_BUNDLE,",
      // Any NODE_EXTRA_CA_CERTS of the caller is kept, the operator CA appended.
      "  extra: fs.readFileSync(e.NODE_EXTRA_CA_CERTS, 'utf8').trim().endsWith(ca),",
      "  noKey: !fs.readFileSync(e.CURL_CA_BUNDLE, 'utf8').includes('PRIVATE KEY'),",
      "  dir: require('node:path').dirname(e.CURL_CA_BUNDLE)",
      "}))",
      "console.log(e.HTTPS_PROXY)"
    ].join("\n")
    const r = await done(["exec", "--proxy", "llm", "--", process.execPath, "-e", script])
    assert.strictEqual(r.code, 0, r.stderr)
    const [first, second] = r.stdout.trim().split("\n")
    const facts = JSON.parse(first ?? "{}")
    assert.deepStrictEqual(
      { ...facts, dir: undefined },
      {
        proxy: true,
        lower: true,
        httpProxy: true,
        noProxy: true,
        bundle: true,
        same: true,
        extra: true,
        noKey: true,
        dir: undefined
      }
    )
    assert.strictEqual(second, "[masked]")
    // existsSync(undefined) is false: without this the check below could not fail.
    assert.isString(facts.dir)
    assert.isFalse(Fs.existsSync(facts.dir), "the CA files are removed when CMD ends")
  })

  it("the Basic proxy credential clients derive from HTTPS_PROXY is masked too (curl -v prints it)", async () => {
    // what a client sends as Proxy-Authorization, computed inside CMD from its own HTTPS_PROXY
    const script = [
      "const u = new URL(process.env.HTTPS_PROXY)",
      "const basic = Buffer.from(decodeURIComponent(u.username) + ':' + decodeURIComponent(u.password)).toString('base64')",
      "console.log(basic.length > 40 ? basic : 'too short: ' + basic.length)"
    ].join("\n")
    const derived = await done(["exec", "--proxy", "llm", "--", process.execPath, "-e", script])
    assert.strictEqual(derived.code, 0, derived.stderr)
    assert.strictEqual(derived.stdout, "[masked]\n")
    const verbose = await done([
      "exec",
      "--proxy",
      "llm",
      "--",
      CURL,
      "-sS",
      "-v",
      "--max-time",
      "30",
      `https://localhost:${upstreamPort}/api/v1/models`
    ])
    assert.strictEqual(verbose.code, 0, verbose.stderr)
    assert.match(verbose.stderr, /Proxy-Authorization: Basic \[masked\]/)
  })

  it("a capability without proxy.connect keeps the base-URL mode: no HTTPS_PROXY", async () => {
    const r = await done([
      "exec",
      "--proxy",
      "llm-base-url",
      "--",
      process.execPath,
      "-e",
      "console.log([process.env.HTTPS_PROXY, process.env.CURL_CA_BUNDLE, process.env.OTHER_BASE_URL?.includes('/v1/proxy/')].join(','))"
    ])
    assert.strictEqual(r.code, 0, r.stderr)
    // CURL_CA_BUNDLE is the caller's own (if any), untouched.
    assert.strictEqual(r.stdout, `,${process.env.CURL_CA_BUNDLE ?? ""},true\n`)
  })

  it("a host outside the allow-list fails in curl (403 from the broker); the exit code is curl's", async () => {
    const r = await done([
      "exec",
      "--proxy",
      "llm",
      "--",
      CURL,
      "-sS",
      "--max-time",
      "30",
      "https://127.0.0.2:9/"
    ])
    assert.strictEqual(r.code, 56, r.stderr)
    assert.include(r.stderr, "403")
  })

  it("the key is in no output, broker log line or audit record", () => {
    const logs = `${broker.live.stdout()}\n${broker.live.stderr()}`
    assert.include(logs, "listening on")
    const auditDir = Path.join(broker.home, "audit")
    const audit = Fs.readdirSync(auditDir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => Fs.readFileSync(Path.join(e.parentPath, e.name), "utf8"))
      .join("\n")
    assert.include(audit, "proxy.request")
    assert.isAbove(outputs.length, 0)
    for (const text of [logs, audit, ...outputs]) {
      assert.notInclude(text, KEY)
      assert.notInclude(text, "aap_pxy_")
    }
  })
})
