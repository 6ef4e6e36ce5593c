/**
 * API fuzz: 5,000 generated hostile requests against a real broker over a socket (keep-alive,
 * 8 in flight): wrong types, huge and odd Unicode strings, deep JSON, duplicate keys, bad ids,
 * path traversal in wallet and secret names, oversized bodies, bad auth headers, with no token,
 * an agent's token and the operator's. Zero 5xx, the broker never exits, and every response that
 * is not a success is a JSON object with a string `_tag` and `message`.
 *
 * Proxy fuzz: 1,500 generated requests through the egress proxy (allowed and hostile paths,
 * valid, foreign and broken tokens, odd methods, oversized headers and bodies) and raw
 * smuggling / framing cases. No 5xx but the upstream's own 500 and 502/504, no crash, the
 * upstream key in no reply (body or headers), log line or audit record, every proxied success
 * audited, the audit chain verifies, and both successes and refusals were exercised.
 */
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FastCheck as fc } from "effect"
import {
  auditEvents,
  broker,
  call,
  enrol,
  operatorToken,
  proxyCatalog,
  putSecret,
  startProxyUpstream,
  tempDir
} from "./support.js"

const REQUESTS = 5_000
const IN_FLIGHT = 8
const MAX_BODY = 16 * 1024

interface Req {
  readonly method: string
  readonly path: string
  readonly auth:
    | { readonly kind: "none" | "operator" | "agent" }
    | { readonly kind: "raw"; readonly value: string }
  readonly contentType: string | undefined
  readonly body: string | undefined
}

// --- strings a hostile client sends --------------------------------------------------------

const traversal = fc.constantFrom(
  "..",
  "../..",
  "../../etc/passwd",
  "..%2f..%2fetc%2fpasswd",
  "%2e%2e%2f%2e%2e%2f",
  "..\\..\\windows",
  "codex/../claude",
  "./.",
  "%00",
  "a%00b",
  "%zz",
  "%",
  "~root",
  "*",
  "#",
  "?x=1",
  "secret#v000000001",
  "wallet#claude",
  "session#x",
  "token#",
  ""
)
const oddUnicode = fc.constantFrom(
  "\u202e\u0041\u0042", // right-to-left override
  "\ufeffbom",
  "\ud800", // lone surrogate
  "\udfff\ud800",
  "𝕏𝕏𝕏🙂👩‍👩‍👧‍👦",
  "e\u0301\u0301\u0301",
  "\u0000\u0001\u001f",
  "\u2028\u2029",
  "İıſK"
)
const hostileString = fc.oneof(
  traversal,
  oddUnicode,
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.string({ unit: "binary", minLength: 300, maxLength: 1_200 }),
  fc.constantFrom(
    "codex",
    "claude",
    "ci",
    "openrouter-chat",
    "openrouter/api-key",
    "01JD0000000000000000000000"
  ),
  fc.integer().map(String),
  fc.constant("x".repeat(7_000))
)

/** A path segment: percent-encoded (any string) or raw (printable ASCII only, e.g. `../..`). */
const segment = fc.oneof(
  hostileString.map((s) => {
    try {
      return encodeURIComponent(s)
    } catch {
      return encodeURIComponent(s.replace(/[\ud800-\udfff]/g, "?")) + "%ED%A0%80" // raw lone surrogate bytes
    }
  }),
  traversal.filter((s) => /^[\x21-\x7e]*$/.test(s))
)

const sessionAction = fc.constantFrom("", "/credentials", "/revoke", "/approve", "/deny", "/x")
const query = fc
  .array(
    fc.tuple(
      fc.constantFrom("status", "agent", "cursor", "limit", "stream", "after", "action", "hmac", "from", "x"),
      fc.oneof(hostileString, fc.constantFrom("-1", "0", "1e9", "NaN", "active", "9".repeat(400)))
    ),
    { maxLength: 4 }
  )
  .map((kv) =>
    kv.length === 0
      ? ""
      : `?${kv.map(([k, v]) => `${k}=${encodeURIComponent(v.replace(/[\ud800-\udfff]/g, "?"))}`).join("&")}`
  )

const path = fc.oneof(
  fc.tuple(query).map(([q]) => `/v1/sessions${q}`),
  fc.tuple(segment, sessionAction).map(([id, a]) => `/v1/sessions/${id}${a}`),
  segment.map((id) => `/v1/agents/${id}/link-codes`),
  fc.constant("/v1/link-codes/redeem"),
  fc.tuple(segment, segment).map(([w, n]) => `/v1/wallets/${w}/secrets/${n}`),
  fc.tuple(segment, segment, segment).map(([w, a, b]) => `/v1/wallets/${w}/secrets/${a}/${b}`),
  segment.map((w) => `/v1/wallets/${w}/secrets`),
  query.map((q) => `/v1/audit${q}`),
  fc.constantFrom("/v1/audit/verify", "/v1/catalog", "/v1/catalog/reload", "/healthz", "/readyz", "/metrics"),
  fc.constantFrom(
    "/",
    "//",
    "/v1",
    "/v1/",
    "/v1//sessions",
    "/V1/SESSIONS",
    "/v1/sessions/",
    "/v1/proxy/x/y"
  ),
  fc.array(segment, { maxLength: 6 }).map((s) => `/${s.join("/")}`)
)

// --- bodies ------------------------------------------------------------------------------------

const wrongTyped = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 3 }),
  hostileString
)
const shaped = fc.record(
  {
    capability: fc.oneof(fc.constantFrom("openrouter-chat", "ses-send", "break-glass-admin"), wrongTyped),
    ttlSeconds: fc.oneof(fc.integer({ min: -10, max: 100_000_000 }), wrongTyped),
    justification: wrongTyped,
    breakGlass: wrongTyped,
    publicKey: wrongTyped,
    reason: wrongTyped,
    value: wrongTyped,
    code: wrongTyped,
    __proto__: fc.constant({ polluted: true }),
    constructor: fc.constant({ prototype: { polluted: true } })
  },
  { requiredKeys: [] }
)
const deep = fc
  .tuple(fc.integer({ min: 100, max: 7_000 }), fc.constantFrom("[", '{"a":'))
  .map(([n, open]) => open.repeat(n) + "1" + (open === "[" ? "]" : "}").repeat(n))
const duplicateKeys = fc.constantFrom(
  '{"capability":"ses-send","capability":"openrouter-chat"}',
  '{"value":"a","value":{"x":1}}',
  '{"code":1,"code":"x","code":null}',
  '{"ttlSeconds":60,"ttlSeconds":1e400}',
  '{"breakGlass":false,"breakGlass":true,"justification":"j","justification":[]}'
)
const invalidJson = fc.constantFrom(
  "{",
  '{"a":}',
  "[1,]",
  "nul",
  "\u0000",
  "{'a':1}",
  "\ufeff{}",
  "1".repeat(400),
  '"\\ud800"'
)
const body = fc.oneof(
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 4, arbitrary: shaped.map((o) => JSON.stringify(o)) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: deep },
  { weight: 1, arbitrary: duplicateKeys },
  { weight: 1, arbitrary: invalidJson },
  { weight: 1, arbitrary: hostileString.map((s) => JSON.stringify({ value: s, capability: s, code: s })) },
  // above the 16 KiB limit configured below: 413
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: MAX_BODY + 1, max: 4 * MAX_BODY })
      .map((n) => JSON.stringify({ value: "v".repeat(n) }))
  }
)

// --- auth ---------------------------------------------------------------------------------

const latin1 = fc.string({
  unit: fc
    .integer({ min: 0x20, max: 0xff })
    .filter((c) => c !== 0x7f)
    .map((c) => String.fromCharCode(c)),
  maxLength: 60
})
const auth: fc.Arbitrary<Req["auth"]> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      { kind: "operator" as const },
      { kind: "agent" as const },
      { kind: "none" as const }
    )
  },
  {
    weight: 2,
    arbitrary: fc
      .oneof(
        latin1.map((s) => `Bearer ${s}`),
        latin1.map((s) => `Bearer aap_op_${s}`),
        latin1.map((s) => `Bearer aap_agt_${s}`),
        fc.constantFrom(
          "Bearer",
          "Bearer ",
          "bearer aap_op_",
          "Basic YWxpY2U6cHc=",
          "Bearer a b",
          "Token x",
          "Bearer\taap"
        ),
        fc.integer({ min: 1_000, max: 8_000 }).map((n) => `Bearer ${"A".repeat(n)}`)
      )
      .map((value) => ({
        kind: "raw" as const,
        value: value.trim() === value ? value : value.trim() || "Bearer"
      }))
  }
)

const request: fc.Arbitrary<Req> = fc.record({
  method: fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "POST", "PUT"),
  path,
  auth,
  contentType: fc.constantFrom(
    "application/json",
    "application/json",
    "text/plain",
    undefined,
    "application/json; charset=utf-16",
    "multipart/form-data; boundary=x"
  ),
  body
})

/** Fixed regression cases: each once found a 5xx (see the issue 11 report). */
const corpus: ReadonlyArray<Req> = [
  {
    method: "POST",
    path: "/v1/link-codes/redeem",
    auth: { kind: "none" },
    contentType: "multipart/form-data; boundary=x",
    body: '{"code":"x"}'
  },
  {
    method: "POST",
    path: "/v1/link-codes/redeem",
    auth: { kind: "none" },
    contentType: "application/json",
    body: `${"[".repeat(5_000)}${"]".repeat(5_000)}`
  },
  {
    method: "POST",
    path: "/v1/sessions",
    auth: { kind: "agent" },
    contentType: "application/json",
    body: `${"[".repeat(7_000)}${"]".repeat(7_000)}`
  },
  {
    method: "GET",
    path: "/v1/audit?stream=..%2Fkeys%2Fkeyring",
    auth: { kind: "operator" },
    contentType: undefined,
    body: undefined
  }
]

// --- sending ------------------------------------------------------------------------------------

interface Result {
  readonly status: number
  readonly text: string
}

const send = (
  agent: Http.Agent,
  base: URL,
  req: Req,
  tokens: { operator: string; agent: string }
): Promise<Result> =>
  new Promise((resolve, reject) => {
    const headers: Record<string, string> = {}
    if (req.auth.kind === "operator") headers.authorization = `Bearer ${tokens.operator}`
    if (req.auth.kind === "agent") headers.authorization = `Bearer ${tokens.agent}`
    if (req.auth.kind === "raw") headers.authorization = req.auth.value
    if (req.contentType !== undefined && req.body !== undefined) headers["content-type"] = req.contentType
    // Framed: without it Node sends a GET/DELETE body unframed, which is the client's error.
    if (req.body !== undefined) headers["content-length"] = String(Buffer.byteLength(req.body))
    const r = Http.request(
      { agent, host: base.hostname, port: base.port, method: req.method, path: req.path, headers },
      (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (c: Buffer) => chunks.push(c))
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") })
        )
        res.on("error", reject)
      }
    )
    r.on("error", reject)
    r.end(req.body)
  })

const problemWith = (res: Result): string | undefined => {
  if (res.status >= 500) return `status ${res.status}`
  if (res.status >= 200 && res.status < 300) return undefined
  try {
    const j: unknown = JSON.parse(res.text)
    if (j === null || typeof j !== "object" || Array.isArray(j)) return "error body is not a JSON object"
    const o = j as Record<string, unknown>
    if (typeof o._tag !== "string" || o._tag.length === 0) return "error body has no _tag"
    if (typeof o.message !== "string") return "error body has no message"
    return undefined
  } catch {
    return "error body is not JSON"
  }
}

/** Above the body limit, or above Node's 16 KiB header limit (431 from Node, see below). */
const oversized = (req: Req) =>
  Buffer.byteLength(req.body ?? "") > MAX_BODY ||
  req.path.length + (req.auth.kind === "raw" ? req.auth.value.length : 0) > 16 * 1024

const describeReq = (req: Req) =>
  JSON.stringify({
    ...req,
    path: req.path.slice(0, 300),
    body: req.body?.slice(0, 300),
    bodyLength: req.body?.length
  })

describe("API fuzz", () => {
  it.scoped(
    `${REQUESTS} hostile requests: no 5xx, no crash, every error a JSON body with _tag`,
    () =>
      Effect.gen(function* () {
        const b = yield* broker(tempDir("fuzz"), {
          AAP_MAX_BODY_BYTES: String(MAX_BODY),
          AAP_LOG_LEVEL: "warning",
          AAP_SESSION_REQUESTS_PER_MINUTE: "600",
          AAP_MAX_LIVE_SESSIONS_PER_AGENT: "50"
        })
        const seed = Number(process.env.AAP_FUZZ_SEED ?? Date.now() % 2 ** 31)
        // Paths + headers stay under Node's 16 KiB header limit: beyond it Node itself answers a
        // bare 431 before the broker sees the request (reported, /work/bugs-found.md).
        const failures = yield* Effect.promise(async () => {
          const operator = operatorToken(b.home)
          await putSecret(b.url, operator, "codex", "openrouter/api-key", "sk-or-fuzz")
          const tokens = { operator, agent: await enrol(b.url, operator, "codex") }
          // The generated requests, plus a fixed corpus of cases that found bugs (sent every run).
          const requests = [...corpus, ...fc.sample(request, { numRuns: REQUESTS, seed })]
          const agent = new Http.Agent({ keepAlive: true, maxSockets: IN_FLIGHT })
          const base = new URL(b.url)
          const found: Array<string> = []
          const statuses = new Map<number, number>()
          let next = 0
          const lane = async () => {
            for (let i = next++; i < requests.length; i = next++) {
              const req = requests[i] as Req
              try {
                const res = await send(agent, base, req, tokens)
                statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
                const problem = res.status === 431 && oversized(req) ? undefined : problemWith(res)
                if (problem !== undefined) {
                  found.push(`${problem}: ${describeReq(req)} -> ${res.status} ${res.text.slice(0, 300)}`)
                }
              } catch (e) {
                // The broker answers 413 and closes while an oversized body is still being sent.
                if (oversized(req)) continue
                if (b.exited() !== undefined) {
                  found.push(`broker exited ${JSON.stringify(b.exited())} at ${describeReq(req)}`)
                  return
                }
                found.push(`transport error ${String(e)}: ${describeReq(req)}`)
              }
            }
          }
          await Promise.all(Array.from({ length: IN_FLIGHT }, lane))
          agent.destroy()
          const health = await fetch(`${b.url}/healthz`)
          if (health.status !== 200) found.push(`healthz after the run: ${health.status}`)
          if (process.env.AAP_FUZZ_DUMP) Fs.writeFileSync(process.env.AAP_FUZZ_DUMP, found.join("\n"))
          process.stderr.write(`fuzz seed ${seed}: statuses ${JSON.stringify([...statuses].sort())}\n`)
          return found
        })
        assert.isUndefined(b.exited(), `the broker exited: ${b.output().slice(-2_000)}`)
        // One line per kind of failure (problem, status, _tag), with its count and first example.
        const kinds = new Map<string, { count: number; example: string }>()
        for (const f of failures) {
          const tag = /"_tag":"([^"]+)"/.exec(f.slice(f.lastIndexOf(" -> ")))?.[1] ?? "-"
          const body = f.includes("multipart/form-data")
            ? ", multipart body"
            : f.includes("[[[[") || f.includes('{\\"a\\":{')
              ? ", deep JSON"
              : ""
          const kind = `${/^[^:]*/.exec(f)?.[0] ?? ""} ${tag}${body}`
          const k = kinds.get(kind)
          kinds.set(kind, { count: (k?.count ?? 0) + 1, example: k?.example ?? f.slice(0, 400) })
        }
        assert.deepStrictEqual(
          [...kinds].map(([kind, { count, example }]) => `${count} x ${kind} (e.g. ${example})`),
          [],
          `seed ${seed} (AAP_FUZZ_SEED=${seed} to replay), ${failures.length} failures`
        )
      }),
    170_000
  )
})

// --- the egress proxy (issue 12) ------------------------------------------------------------

const PROXY_REQUESTS = 1_500
/** The upstream key: it must never appear in a reply (body or headers), the log or the audit. */
const PROXY_KEY = `sk-fuzz-${randomBytes(16).toString("hex")}`
const keyForms = [
  PROXY_KEY,
  encodeURIComponent(`Bearer ${PROXY_KEY}`),
  Buffer.from(PROXY_KEY).toString("base64")
]
const carriesKey = (text: string): boolean => keyForms.some((k) => text.includes(k))

interface ProxyResult {
  readonly status: number
  readonly text: string
  /** Raw response headers, names and values. */
  readonly headers: string
}

const proxySegment = fc.oneof(
  fc.constantFrom(
    "ok",
    "error",
    "redirect",
    "stream",
    "v1",
    "..",
    ".",
    "%2e%2e",
    "%2E%2e",
    ".%2e",
    "..;",
    "..;x",
    "%252e%252e",
    "..%2f..",
    "..%2F",
    "%2f",
    "%5c",
    "a%5cb",
    "..\\..",
    "%00",
    "%zz",
    "%",
    "%c0%ae%c0%ae",
    "%u002e",
    "",
    "keys",
    "x".repeat(5_000)
  ),
  segment
)
const hostilePath = fc
  .tuple(
    fc.array(proxySegment, { minLength: 0, maxLength: 5 }),
    fc.constantFrom("", "?a=1", "?x=..%2f", "#f")
  )
  .map(([segs, q]) => `/${segs.join("/")}${q}`)
/** Paths the catalog allows (`/api/ok`, `/api/stream`, `/api/v1/*`...), so valid requests succeed. */
const allowedPath = fc
  .tuple(
    fc.constantFrom("/ok", "/stream", "/error", "/redirect", "/v1/models", "/v1/chat/completions"),
    fc.constantFrom("", "", "?a=1", "?stream=true&model=x%2Fy")
  )
  .map(([path, q]) => `${path}${q}`)
// A uniform mix of hostile segments hardly ever yields an allowed path (one in ~2,000 draws):
// weighted so that valid requests reach the upstream and succeed too.
const proxyPath = fc.oneof({ weight: 2, arbitrary: allowedPath }, { weight: 3, arbitrary: hostilePath })

type TokenKind = "valid" | "none" | "garbage" | "other-session" | "down" | "truncated" | "basic" | "x-api-key"
interface ProxyReq {
  readonly method: string
  readonly path: string
  readonly token: TokenKind
  readonly garbage: string
  readonly bigHeader: number
  readonly body: string | undefined
}
const proxyRequest: fc.Arbitrary<ProxyReq> = fc.record({
  method: fc.constantFrom(
    "GET",
    "GET",
    "POST",
    "POST",
    "PUT",
    "DELETE",
    "PATCH",
    "HEAD",
    "OPTIONS",
    "PROPFIND",
    "M-SEARCH",
    "get"
  ),
  path: proxyPath,
  token: fc.constantFrom<TokenKind>(
    "valid",
    "valid",
    "valid",
    "none",
    "garbage",
    "other-session",
    "down",
    "truncated",
    "basic",
    "x-api-key"
  ),
  garbage: fc.oneof(latin1, fc.constant(`aap_pxy_${"A".repeat(56)}`), fc.constant("aap_pxy_")),
  bigHeader: fc.constantFrom(0, 0, 0, 0, 0, 0, 8_000, 15_000, 40_000),
  body: fc.oneof(fc.constant(undefined), fc.string({ maxLength: 200 }), fc.constant("b".repeat(40_000)))
})

/** Raw bytes a hostile client sends: smuggling attempts, bad methods and framing. `TOKEN`, `SES` are filled in. */
const rawCases: ReadonlyArray<string> = [
  // Content-Length and Transfer-Encoding together (CL.TE / TE.CL)
  "POST /v1/proxy/SES/ok HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer TOKEN\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /v1/proxy/SES/keys HTTP/1.1\r\nHost: x\r\n\r\n",
  "POST /v1/proxy/SES/ok HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer TOKEN\r\nTransfer-Encoding: chunked\r\nContent-Length: 50\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
  // obfuscated Transfer-Encoding
  "POST /v1/proxy/SES/ok HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer TOKEN\r\nTransfer-Encoding: xchunked\r\n\r\n",
  "POST /v1/proxy/SES/ok HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer TOKEN\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
  "POST /v1/proxy/SES/ok HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer TOKEN\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
  // two Content-Lengths
  "POST /v1/proxy/SES/ok HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer TOKEN\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
  // bad chunk sizes
  "POST /v1/proxy/SES/ok HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer TOKEN\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n",
  // bad methods and request lines
  "G\u0000ET /v1/proxy/SES/ok HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer TOKEN\r\n\r\n",
  "GET\t/v1/proxy/SES/ok HTTP/1.1\r\nHost: x\r\n\r\n",
  "CONNECT /v1/proxy/SES/ok HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer TOKEN\r\n\r\n",
  "GET /v1/proxy/SES/ok HTTP/9.9\r\nHost: x\r\nAuthorization: Bearer TOKEN\r\n\r\n",
  "GET /v1/proxy/SES/ok\r\n\r\n",
  // header injection and obs-fold
  "GET /v1/proxy/SES/ok HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer TOKEN\r\nX-A: a\r\n b\r\n\r\n",
  "GET /v1/proxy/SES/ok HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer TOKEN\r\nX-A: a\rb\r\n\r\n",
  // upgrades
  "GET /v1/proxy/SES/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer TOKEN\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
  "GET /v1/proxy/SES/ok HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer TOKEN\r\nConnection: close, authorization\r\n\r\n",
  // absolute-form and asterisk targets
  "GET http://127.0.0.1/v1/proxy/SES/ok HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer TOKEN\r\n\r\n",
  "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
  // a header above node's limit
  `GET /v1/proxy/SES/ok HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer TOKEN\r\nX-Big: ${"h".repeat(20_000)}\r\n\r\n`
]

/** Sends raw bytes, returns the status of the first response line (0 when the broker closed without one). */
const sendRaw = (base: URL, bytes: string): Promise<number> =>
  new Promise((resolve) => {
    const socket = Net.connect(Number(base.port), base.hostname)
    let data = ""
    const done = () => {
      socket.destroy()
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(data)
      resolve(m === null ? 0 : Number(m[1]))
    }
    socket.setTimeout(5_000, done)
    socket.on("data", (c: Buffer) => {
      data += c.toString("latin1")
      if (data.includes("\r\n\r\n")) setTimeout(done, 50)
    })
    socket.on("error", done)
    socket.on("close", done)
    socket.end(bytes)
  })

describe("proxy fuzz", () => {
  it.scoped(
    `${PROXY_REQUESTS} hostile proxy requests and ${rawCases.length} raw smuggling / framing cases: no 5xx but 502/504, no crash`,
    () =>
      Effect.gen(function* () {
        const dir = tempDir("fuzz-proxy")
        const upstream = yield* Effect.acquireRelease(
          Effect.promise(() => startProxyUpstream(dir)),
          (u) => Effect.promise(() => u.close())
        )
        const b = yield* broker(tempDir("fuzz-proxy-home"), {
          AAP_CATALOG: proxyCatalog(dir, upstream.url),
          AAP_PROXY_UPSTREAM_CA_FILE: upstream.caFile,
          AAP_LOG_LEVEL: "warning",
          AAP_PROXY_RESPONSE_TIMEOUT_MS: "5000"
        })
        const seed = Number(process.env.AAP_FUZZ_SEED ?? Date.now() % 2 ** 31)
        const failures = yield* Effect.promise(async () => {
          const operator = operatorToken(b.home)
          await putSecret(b.url, operator, "codex", "proxy/api-key", PROXY_KEY)
          const agentToken = await enrol(b.url, operator, "codex")
          const open = async (capability: string) => {
            const s = await call(b.url, "POST", "/v1/sessions", { token: agentToken, body: { capability } })
            const c = await call(b.url, "POST", `/v1/sessions/${String(s.json.id)}/credentials`, {
              token: agentToken,
              body: {}
            })
            const credential = c.json.credential as Record<string, string>
            if (credential?._tag !== "proxy") throw new Error(`no proxy credential: ${c.text}`)
            return { id: String(s.json.id), token: String(credential.token) }
          }
          const main = await open("proxied-llm")
          const other = await open("proxied-llm")
          const down = await open("proxied-down")
          const base = new URL(b.url)
          const agent = new Http.Agent({ keepAlive: true, maxSockets: IN_FLIGHT })
          const found: Array<string> = []
          const statuses = new Map<number, number>()
          const requests = fc.sample(proxyRequest, { numRuns: PROXY_REQUESTS, seed })
          const sendOne = (r: ProxyReq): Promise<ProxyResult> =>
            new Promise((resolve, reject) => {
              const session = r.token === "down" ? down : main
              const headers: Record<string, string> = {}
              if (r.token === "valid" || r.token === "down") headers.authorization = `Bearer ${session.token}`
              if (r.token === "garbage") headers.authorization = `Bearer ${r.garbage}`
              if (r.token === "other-session") headers.authorization = `Bearer ${other.token}`
              if (r.token === "truncated") headers.authorization = `Bearer ${main.token.slice(0, -1)}`
              if (r.token === "basic")
                headers.authorization = `Basic ${Buffer.from(`x:${main.token}`).toString("base64")}`
              if (r.token === "x-api-key") headers["x-api-key"] = main.token
              if (r.bigHeader > 0) headers["x-big"] = "h".repeat(r.bigHeader)
              if (r.body !== undefined) headers["content-length"] = String(Buffer.byteLength(r.body))
              const q = Http.request(
                {
                  agent,
                  host: base.hostname,
                  port: base.port,
                  method: r.method,
                  path: `/v1/proxy/${session.id}${r.path}`,
                  headers
                },
                (res) => {
                  const chunks: Array<Buffer> = []
                  res.on("data", (c: Buffer) => chunks.push(c))
                  res.on("end", () =>
                    resolve({
                      status: res.statusCode ?? 0,
                      text: Buffer.concat(chunks).toString("utf8"),
                      headers: res.rawHeaders.join("\n")
                    })
                  )
                  res.on("error", reject)
                }
              )
              q.on("error", reject)
              q.end(r.body)
            })
          let next = 0
          const lane = async () => {
            for (let i = next++; i < requests.length; i = next++) {
              const r = requests[i] as ProxyReq
              const what = JSON.stringify({
                ...r,
                path: r.path.slice(0, 200),
                body: r.body?.slice(0, 50),
                garbage: r.garbage.slice(0, 50)
              })
              try {
                const res = await sendOne(r)
                statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
                // 2xx-4xx from the upstream pass through as they are; the broker's own answers are
                // JSON. A 5xx is a finding unless the upstream produced it (500 from /error) or it
                // is 502/504 (upstream unreachable / slow).
                const fromUpstreamError = res.status === 500 && res.text === '{"error":"upstream exploded"}'
                if (res.status >= 500 && res.status !== 502 && res.status !== 504 && !fromUpstreamError) {
                  found.push(`status ${res.status}: ${what} -> ${res.text.slice(0, 200)}`)
                }
                if (carriesKey(res.text) || carriesKey(res.headers)) {
                  found.push(`reply ${res.status} carries the upstream key: ${what}`)
                }
              } catch (e) {
                if (b.exited() !== undefined) {
                  found.push(`broker exited ${JSON.stringify(b.exited())} at ${what}`)
                  return
                }
                // Node answers 431 and closes on headers above 16 KiB, 413-like closes on big bodies.
                if (r.bigHeader > 16_000 || r.path.length > 16_000) continue
                found.push(`transport error ${String(e)}: ${what}`)
              }
            }
          }
          await Promise.all(Array.from({ length: IN_FLIGHT }, lane))
          agent.destroy()
          for (const raw of rawCases) {
            const bytes = raw.replaceAll("SES", main.id).replaceAll("TOKEN", main.token)
            const status = await sendRaw(base, bytes)
            statuses.set(status, (statuses.get(status) ?? 0) + 1)
            if (status >= 500 && status !== 502 && status !== 504) {
              found.push(`raw case answered ${status}: ${JSON.stringify(raw.slice(0, 120))}`)
            }
            if (b.exited() !== undefined)
              found.push(`broker exited at raw case ${JSON.stringify(raw.slice(0, 120))}`)
          }
          // The proxy still works after all that, and so does the rest of the broker.
          const ok = await fetch(`${b.url}/v1/proxy/${main.id}/ok`, {
            headers: { authorization: `Bearer ${main.token}` }
          })
          if (ok.status !== 200) found.push(`proxy after the run: ${ok.status} ${await ok.text()}`)
          const health = await fetch(`${b.url}/healthz`)
          if (health.status !== 200) found.push(`healthz after the run: ${health.status}`)
          // proxy.request records are appended after each exchange ends: wait for the last ones.
          const proxied = statuses.get(200) ?? 0
          let audited = 0
          for (let i = 0; i < 50; i++) {
            audited = (await auditEvents(b.url, operator, "proxy.request")).filter(
              (e) => e.outcome === "success"
            ).length
            if (audited >= proxied) break
            await new Promise((r) => setTimeout(r, 100))
          }
          if (audited < proxied)
            found.push(`${proxied} proxied 200s but ${audited} proxy.request successes audited`)
          const audit = await call(b.url, "GET", "/v1/audit?limit=10000", { token: operator })
          if (audit.status !== 200) found.push(`audit read: ${audit.status} ${audit.text.slice(0, 200)}`)
          if (carriesKey(audit.text)) found.push("the audit carries the upstream key")
          const verify = await call(b.url, "GET", "/v1/audit/verify", { token: operator })
          if (verify.status !== 200 || verify.json.ok !== true)
            found.push(`audit verify: ${verify.status} ${verify.text}`)
          const atLeast = (status: number, n: number) => (statuses.get(status) ?? 0) >= n
          if (!atLeast(200, 20) || !atLeast(400, 20) || !atLeast(401, 20) || !atLeast(403, 20)) {
            found.push(`the run did not exercise success and refusals: ${JSON.stringify([...statuses])}`)
          }
          process.stderr.write(`proxy fuzz seed ${seed}: statuses ${JSON.stringify([...statuses].sort())}\n`)
          return found
        })
        assert.isUndefined(b.exited(), `the broker exited: ${b.output().slice(-2_000)}`)
        assert.deepStrictEqual(
          failures.slice(0, 20),
          [],
          `seed ${seed} (AAP_FUZZ_SEED=${seed} to replay), ${failures.length} failures`
        )
        assert.isFalse(carriesKey(b.output()), "the broker log carries the upstream key")
        // A defect the proxy answered with a generic 500 would be logged as such.
        assert.notInclude(b.output(), "proxy: unexpected failure")
      }),
    170_000
  )
})
