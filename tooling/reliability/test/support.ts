/**
 * A real broker for the reliability tests: `apps/broker/src/main.ts` in its own child process
 * (so a crash is a crash, and SIGKILL is SIGKILL), configured only through the environment the
 * way an operator runs it, on a free port and a temporary `AAP_HOME`.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { Effect, type Scope } from "effect"

export const root = Path.resolve(import.meta.dirname, "../../..")
export const catalogFile = Path.join(root, "examples/catalog.yaml")
const brokerDir = Path.join(root, "apps/broker")
const cliBin = Path.join(root, "apps/cli/bin/aap.mjs")
// The entry and the bundle `aap serve` hands over to (named serve.mjs or daemon.mjs by the CLI build).
const cliBuilt = (): boolean =>
  Fs.existsSync(Path.join(root, "apps/cli/dist/aap.mjs")) &&
  (Fs.existsSync(Path.join(root, "apps/cli/dist/daemon.mjs")) ||
    Fs.existsSync(Path.join(root, "apps/cli/dist/serve.mjs")))

/**
 * How the broker is started: `aap serve` from the built CLI (what operators run; starts in
 * about 1.5 s) when `apps/cli/dist` exists (turbo builds it before this package's tests), else
 * the broker's `src/main.ts` through tsx (about 5 s). `AAP_RELIABILITY_BROKER=tsx` forces tsx.
 */
const command = (): { args: Array<string>; cwd: string } =>
  process.env.AAP_RELIABILITY_BROKER !== "tsx" && cliBuilt()
    ? { args: [cliBin, "serve"], cwd: root }
    : { args: ["--import", "tsx", "src/main.ts"], cwd: brokerDir }

export const tempDir = (prefix: string): string =>
  Fs.mkdtempSync(Path.join(Os.tmpdir(), `aap-rel-${prefix}-`))

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const srv = Net.createServer()
    srv.once("error", reject)
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      srv.close(() => resolve(port))
    })
  })

export interface Spawned {
  readonly url: string
  readonly home: string
  readonly child: ChildProcess
  /** Everything the process wrote to stdout and stderr so far. */
  readonly output: () => string
  /** Exit code or signal once it exited, otherwise undefined. */
  readonly exited: () => { code: number | null; signal: NodeJS.Signals | null } | undefined
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Spawn the broker and wait until `/readyz` answers 200. Generous limits (session rate and
 * count) unless overridden, so the load generators measure the broker and not its 429s.
 */
export const spawnBroker = async (
  home: string,
  env: Record<string, string> = {},
  readyWithinMs = 90_000
): Promise<Spawned> => {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  let out = ""
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined
  const { args, cwd } = command()
  const child = spawn(process.execPath, args, {
    cwd,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      AAP_HOME: home,
      AAP_LISTEN: `127.0.0.1:${port}`,
      AAP_CATALOG: catalogFile,
      AAP_LOG_LEVEL: "info",
      AAP_MAX_LIVE_SESSIONS_PER_AGENT: "1000000",
      AAP_SESSION_REQUESTS_PER_MINUTE: "1000000",
      ...env
    }
  })
  child.stdout?.on("data", (b: Buffer) => {
    out += b.toString("utf8")
  })
  child.stderr?.on("data", (b: Buffer) => {
    out += b.toString("utf8")
  })
  child.once("exit", (code, signal) => {
    exit = { code, signal }
  })
  const until = Date.now() + readyWithinMs
  for (;;) {
    if (exit !== undefined) throw new Error(`broker exited before ready (${JSON.stringify(exit)}):\n${out}`)
    try {
      const r = await fetch(`${url}/readyz`)
      await r.arrayBuffer()
      if (r.ok) break
    } catch {
      // not listening yet
    }
    if (Date.now() > until) {
      child.kill("SIGKILL")
      throw new Error(`broker not ready within ${readyWithinMs} ms:\n${out}`)
    }
    await sleep(150)
  }
  return { url, home, child, output: () => out, exited: () => exit }
}

/** Stop with a signal and wait for the exit. */
export const stop = (b: Spawned, signal: NodeJS.Signals = "SIGTERM"): Promise<void> =>
  new Promise((resolve) => {
    if (b.exited() !== undefined) return resolve()
    b.child.once("exit", () => resolve())
    b.child.kill(signal)
  })

/** The broker as a scoped resource: SIGTERM (then SIGKILL after 10 s) when the scope closes. */
export const broker = (
  home: string,
  env: Record<string, string> = {}
): Effect.Effect<Spawned, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => spawnBroker(home, env)),
    (b) =>
      Effect.promise(async () => {
        const t = setTimeout(() => b.child.kill("SIGKILL"), 10_000)
        await stop(b)
        clearTimeout(t)
      })
  )

export interface Reply {
  readonly status: number
  readonly text: string
  readonly json: Record<string, unknown>
}

export const call = async (
  base: string,
  method: string,
  path: string,
  init: { token?: string | undefined; body?: unknown; headers?: Record<string, string> } = {}
): Promise<Reply> => {
  const headers: Record<string, string> = { ...init.headers }
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`
  if (init.body !== undefined) headers["content-type"] ??= "application/json"
  const res = await fetch(base + path, {
    method,
    headers,
    ...(init.body === undefined
      ? {}
      : { body: typeof init.body === "string" ? init.body : JSON.stringify(init.body) })
  })
  const text = await res.text()
  let json: Record<string, unknown> = {}
  try {
    const parsed: unknown = JSON.parse(text)
    if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) {
      json = parsed as Record<string, unknown>
    }
  } catch {
    json = {}
  }
  return { status: res.status, text, json }
}

export const operatorToken = (home: string): string =>
  Fs.readFileSync(Path.join(home, "operator.token"), "utf8").trim()

const expectStatus = (r: Reply, status: number, what: string): Reply => {
  if (r.status !== status) throw new Error(`${what}: expected ${status}, got ${r.status} ${r.text}`)
  return r
}

/** Invite + redeem: the agent's token. */
export const enrol = async (url: string, operator: string, agent: string): Promise<string> => {
  const invite = expectStatus(
    await call(url, "POST", `/v1/agents/${agent}/link-codes`, { token: operator, body: {} }),
    201,
    "invite"
  )
  const redeemed = expectStatus(
    await call(url, "POST", "/v1/link-codes/redeem", { body: { code: invite.json.code } }),
    200,
    "redeem"
  )
  return String(redeemed.json.token)
}

export const putSecret = async (
  url: string,
  operator: string,
  wallet: string,
  name: string,
  value: string
): Promise<void> => {
  expectStatus(
    await call(url, "PUT", `/v1/wallets/${wallet}/secrets/${encodeURIComponent(name)}`, {
      token: operator,
      body: { value }
    }),
    200,
    "put secret"
  )
}

/** Every file under `dir`, recursively. */
export const filesUnder = (dir: string): Array<string> => {
  const out: Array<string> = []
  const walk = (d: string) => {
    for (const e of Fs.readdirSync(d, { withFileTypes: true })) {
      const p = Path.join(d, e.name)
      if (e.isDirectory()) walk(p)
      else if (e.isFile()) out.push(p)
    }
  }
  walk(dir)
  return out
}

/** The audit events with this action (every stream), through the operator API. */
export const auditEvents = async (
  url: string,
  operator: string,
  action: string
): Promise<Array<Record<string, unknown>>> => {
  const q = new URLSearchParams({ action, limit: "10000" })
  const r = expectStatus(await call(url, "GET", `/v1/audit?${q}`, { token: operator }), 200, "audit")
  const events = (r.json.events ?? []) as Array<Record<string, unknown>>
  if (events.length >= 10_000) throw new Error("more than 10,000 events: the check would be incomplete")
  return events
}

/** Every session, following the cursor, through the operator API. */
export const allSessions = async (
  url: string,
  operator: string,
  agent: string
): Promise<Array<Record<string, unknown>>> => {
  const out: Array<Record<string, unknown>> = []
  let cursor: string | undefined
  for (;;) {
    const q = new URLSearchParams({ agent, limit: "100", ...(cursor === undefined ? {} : { cursor }) })
    const r = expectStatus(await call(url, "GET", `/v1/sessions?${q}`, { token: operator }), 200, "sessions")
    out.push(...((r.json.sessions ?? []) as Array<Record<string, unknown>>))
    if (typeof r.json.cursor !== "string") return out
    cursor = r.json.cursor
  }
}

// ---------------------------------------------------------------------------------------------
// The egress proxy (issue 12): a local HTTPS upstream and a catalog that proxies to it
// ---------------------------------------------------------------------------------------------

export interface ProxyUpstream {
  readonly url: string
  /** The PEM file of the upstream's self-signed certificate (`AAP_PROXY_UPSTREAM_CA_FILE`). */
  readonly caFile: string
  /** The `authorization` header of every request the upstream received. */
  readonly seen: Array<string>
  readonly close: () => Promise<void>
}

/**
 * A local HTTPS upstream (127.0.0.1, a throwaway P-256 certificate made with openssl) whose
 * routes misbehave the way real upstreams do with a credential:
 * - `/api/ok`: 200 JSON;
 * - `/api/error`: 500 with the request's `authorization` echoed in a response header;
 * - `/api/redirect`: 302 whose `location` and `x-echo-auth` carry the credential;
 * - `/api/stream`: a few SSE events;
 * - anything else: 404.
 */
export const startProxyUpstream = async (dir: string): Promise<ProxyUpstream> => {
  const { execFileSync } = await import("node:child_process")
  const Https = await import("node:https")
  const keyFile = Path.join(dir, "upstream-key.pem")
  const caFile = Path.join(dir, "upstream-cert.pem")
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      keyFile,
      "-out",
      caFile,
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost"
    ],
    { stdio: "ignore" }
  )
  const seen: Array<string> = []
  const server = Https.createServer(
    { key: Fs.readFileSync(keyFile), cert: Fs.readFileSync(caFile), keepAlive: true },
    (req, res) => {
      const auth = req.headers.authorization ?? ""
      seen.push(auth)
      req.resume()
      const path = (req.url ?? "").split("?")[0]
      if (path === "/api/ok") {
        res.writeHead(200, { "content-type": "application/json" })
        res.end('{"ok":true}')
      } else if (path === "/api/error") {
        res.writeHead(500, { "content-type": "application/json", "x-request-auth": auth })
        res.end('{"error":"upstream exploded"}')
      } else if (path === "/api/redirect") {
        res.writeHead(302, {
          location: `https://127.0.0.1:1/callback?auth=${encodeURIComponent(auth)}`,
          "x-echo-auth": auth,
          "content-length": "0"
        })
        res.end()
      } else if (path === "/api/stream") {
        res.writeHead(200, { "content-type": "text/event-stream" })
        res.write("data: one\n\n")
        res.end("data: [DONE]\n\n")
      } else {
        res.writeHead(404, { "content-type": "application/json" })
        res.end('{"error":"not found"}')
      }
    }
  )
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  return {
    url: `https://127.0.0.1:${port}`,
    caFile,
    seen,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}

/**
 * `examples/catalog.yaml` plus two proxied capabilities for `codex`: `proxied-llm` (the local
 * upstream under `/api`, GET and POST on `/api/ok`, `/api/error`, `/api/redirect`,
 * `/api/stream`, `/api/v1/*`) and `proxied-down` (nothing listens on its port). Returns the file.
 */
export const proxyCatalog = (dir: string, upstreamUrl: string): string => {
  const file = Path.join(dir, "catalog.yaml")
  const extra = [
    "",
    "  - id: proxied-llm",
    "    tier: low",
    "    agents: [codex]",
    "    ttl: { default: 15m, max: 1h }",
    "    backing:",
    "      type: bearer-token",
    "      secret: proxy/api-key",
    "      env: LLM_API_KEY",
    "      proxy:",
    `        upstream: ${upstreamUrl}/api`,
    "        header: Authorization",
    "        scheme: Bearer",
    "        paths: [/api/ok, /api/error, /api/redirect, /api/stream, /api/v1/*]",
    "        methods: [GET, POST]",
    "",
    "  - id: proxied-down",
    "    tier: low",
    "    agents: [codex]",
    "    ttl: { default: 15m, max: 1h }",
    "    backing:",
    "      type: bearer-token",
    "      secret: proxy/api-key",
    "      env: DOWN_API_KEY",
    "      proxy:",
    "        upstream: https://127.0.0.1:1",
    "        header: x-api-key",
    "        paths: [/*]",
    "        methods: [GET]",
    ""
  ].join("\n")
  Fs.writeFileSync(file, `${Fs.readFileSync(catalogFile, "utf8").trimEnd()}\n${extra}`)
  return file
}
