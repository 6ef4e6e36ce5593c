/**
 * A local HTTPS upstream (127.0.0.1, a throwaway self-signed certificate made with openssl)
 * and the proxy's context layers in memory, for the proxy tests and the benchmark.
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import type * as Http from "node:http"
import * as Https from "node:https"
import * as Os from "node:os"
import * as Path from "node:path"
import { CurrentCatalog, DeliveryPorts, EgressProxy } from "@aap/agent-coordination"
import { AuditLog } from "@aap/audit"
import { Catalog } from "@aap/catalog"
import { SystemKeys } from "@aap/key-custody"
import { Layer, Schema } from "effect"

export const KEY = "CANARY-upstream-key-5b9e1d"

export interface Tls {
  readonly key: string
  readonly cert: string
}

/** The extensions of an operator CA (the interception tests): a CA that signs certificates. */
export const CA_EXTENSIONS = ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign"]

/**
 * A self-signed certificate made with openssl (EC P-256 unless `rsa`, valid one day), written to
 * `<dir>/<name>.pem` with its key in `<dir>/<name>.key` (mode 0600); `extensions` as `-addext`.
 */
export const makeCert = (
  dir: string,
  name: string,
  subject: string,
  extensions: ReadonlyArray<string>,
  kind: "ec" | "rsa" = "ec"
): { readonly cert: string; readonly key: string } => {
  const cert = Path.join(dir, `${name}.pem`)
  const key = Path.join(dir, `${name}.key`)
  ChildProcess.execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      kind === "ec" ? "ec" : "rsa:2048",
      ...(kind === "ec" ? ["-pkeyopt", "ec_paramgen_curve:prime256v1"] : []),
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "1",
      "-subj",
      subject,
      ...extensions.flatMap((e) => ["-addext", e])
    ],
    { stdio: "ignore" }
  )
  Fs.chmodSync(key, 0o600)
  return { cert, key }
}

/** A P-256 self-signed certificate for 127.0.0.1 / localhost, valid one day. */
export const makeTls = (): Tls => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "aap-proxy-tls-"))
  try {
    const { cert, key } = makeCert(dir, "tls", "/CN=localhost", ["subjectAltName=IP:127.0.0.1,DNS:localhost"])
    return { key: Fs.readFileSync(key, "utf8"), cert: Fs.readFileSync(cert, "utf8") }
  } finally {
    Fs.rmSync(dir, { recursive: true, force: true })
  }
}

export interface Upstream {
  readonly server: Https.Server
  readonly port: number
  readonly url: string
  /** Headers of every request the upstream received. */
  readonly seen: Array<Http.IncomingHttpHeaders>
  /** Resolves the SSE endpoint's wait before its last event. */
  releaseLast: () => void
  /** `performance.now()` when the SSE endpoint wrote its last event. */
  lastSentAt: number
}

/**
 * Routes (all require `authorization: Bearer <KEY>`, else 401):
 * - `POST /api/v1/chat/completions`: SSE — one event, then waits for `releaseLast()`, then `[DONE]`.
 * - `POST /api/v1/echo`: streams the request body back.
 * - `GET /api/v1/leak`: a response header that echoes the key.
 * - `GET /api/v1/small[?delay=<ms>]`: `{"ok":true}`, after `delay` ms if given (the benchmark).
 * - `POST /api/v1/stream?events=N&size=S`: SSE — N events of S bytes each, 2 ms apart.
 * - `POST /api/v1/upload`: reads the whole request body, answers `{"bytes":<count>}`.
 */
export const startUpstream = (tls: Tls): Promise<Upstream> =>
  new Promise((resolve) => {
    const state: Upstream = {
      server: undefined as never,
      port: 0,
      url: "",
      seen: [],
      releaseLast: () => {},
      lastSentAt: 0
    }
    const server = Https.createServer({ key: tls.key, cert: tls.cert, keepAlive: true }, (req, res) => {
      state.seen.push(req.headers)
      if (req.headers.authorization !== `Bearer ${KEY}`) {
        res.writeHead(401, { "content-type": "application/json" })
        res.end('{"error":"bad key"}')
        return
      }
      const path = (req.url ?? "").split("?")[0]
      if (path === "/api/v1/chat/completions") {
        req.resume()
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
        res.write('data: {"delta":"one"}\n\n')
        new Promise<void>((release) => {
          state.releaseLast = release
        }).then(() => {
          state.lastSentAt = performance.now()
          res.end("data: [DONE]\n\n")
        })
        return
      }
      if (path === "/api/v1/echo") {
        res.writeHead(200, { "content-type": "application/octet-stream" })
        req.pipe(res)
        return
      }
      if (path === "/api/v1/leak") {
        res.writeHead(200, { "x-debug-key": `k=${KEY}`, "content-type": "text/plain" })
        res.end("ok")
        return
      }
      if (path === "/api/v1/stream") {
        req.resume()
        const q = new URLSearchParams((req.url ?? "").split("?")[1] ?? "")
        const events = Number(q.get("events") ?? "10")
        const size = Number(q.get("size") ?? "1000")
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
        let sent = 0
        const next = () => {
          if (res.destroyed) return
          if (sent === events) {
            res.end()
            return
          }
          sent++
          // "data: " + payload + "\n\n" is exactly `size` bytes.
          res.write(`data: ${"e".repeat(Math.max(0, size - 8))}\n\n`)
          setTimeout(next, 2)
        }
        next()
        return
      }
      if (path === "/api/v1/upload") {
        let bytes = 0
        req.on("data", (c: Buffer) => {
          bytes += c.length
        })
        req.on("end", () => {
          res.writeHead(200, { "content-type": "application/json" })
          res.end(JSON.stringify({ bytes }))
        })
        return
      }
      if (path === "/api/v1/small") {
        const answer = () => {
          res.writeHead(200, { "content-type": "application/json", "content-length": "11" })
          res.end('{"ok":true}')
        }
        // `?delay=<ms>`: answers after that long (the benchmark's row with an upstream latency).
        const delay = req.url === path ? 0 : Number(new URLSearchParams(req.url?.split("?")[1]).get("delay"))
        if (delay > 0) setTimeout(answer, delay)
        else answer()
        return
      }
      res.writeHead(404)
      res.end()
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      Object.assign(state, { server, port, url: `https://127.0.0.1:${port}` })
      resolve(state)
    })
  })

export const catalogFor = (upstreamUrl: string): Catalog.Catalog =>
  Schema.decodeUnknownSync(Catalog.Catalog)({
    schemaVersion: 1,
    agents: [{ id: "codex", wallet: "codex" }],
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
            upstream: `${upstreamUrl}/api`,
            header: "Authorization",
            scheme: "Bearer",
            paths: [
              "/api/v1/chat/*",
              "/api/v1/echo",
              "/api/v1/leak",
              "/api/v1/small",
              "/api/v1/stream",
              "/api/v1/upload"
            ],
            methods: ["POST", "GET"]
          }
        }
      },
      {
        id: "down",
        tier: "low",
        agents: ["codex"],
        ttl: { default: "15m", max: "1h" },
        backing: {
          type: "bearer-token",
          secret: "llm/api-key",
          env: "DOWN_API_KEY",
          // Port 1 on loopback: nothing listens there.
          proxy: { upstream: "https://127.0.0.1:1", header: "x-api-key", paths: ["/*"], methods: ["GET"] }
        }
      }
    ]
  })

/** The proxy decisions over memory adapters; `sessions` is the live session table. */
export const proxyLayer = (
  catalog: Catalog.Catalog,
  sessions: Map<string, DeliveryPorts.SessionView>,
  config: Partial<EgressProxy.ProxyConfigShape> = {}
) =>
  EgressProxy.layer.pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        DeliveryPorts.sessionsFromMap(sessions),
        DeliveryPorts.secretsMemory([["codex", "llm/api-key", KEY]]),
        CurrentCatalog.layer(catalog),
        AuditLog.layerMemory,
        SystemKeys.layerMemory,
        EgressProxy.layerConfig(config)
      )
    )
  )
