/**
 * The forward-proxy edge (issue 12, ADR 0081/0082) on the broker's own listener:
 * `HTTPS_PROXY=http://<session>:<proxy token>@<broker>`.
 *
 * - `CONNECT host:port` with `Proxy-Authorization: Basic` → `ForwardProxy.connect` decides:
 *   407 (`Proxy-Authenticate`) for missing or bad credentials, 403 / 409 / 410 for refusals
 *   (audited), else a blind tunnel (`proxy.connect` targets) or, with an operator CA, TLS
 *   terminated with a leaf certificate for the upstream host and every inner request run
 *   through the reverse-proxy pipeline (`ProxyServer.makeHandler().handleRequest`): same key
 *   injection, allow-lists, budgets, per-request audit and streaming.
 * - Every tunnel is watched: `stillOpen` every `tunnelCheckMs` (default 1 s) and a timer at the
 *   session's deadline; a revoked or expired session (or a catalog change) cuts it.
 * - Absolute-form requests (`GET http://host/...`, `HTTP_PROXY`) are not forwarded: 407 without
 *   credentials, else the CONNECT decision for that host and a 403 telling the agent to use
 *   `HTTPS_PROXY` or the base URL.
 *
 * The `Proxy-Authorization` header is never logged, echoed or forwarded.
 *
 * @since 0.1.0
 */
import * as Http from "node:http"
import * as Net from "node:net"
import * as Tls from "node:tls"
import { type EgressProxy, ForwardProxy } from "@aap/agent-coordination"
import { Cause, DateTime, Effect, Exit, Layer, Option, Redacted, Runtime } from "effect"
import { FORWARD_PROXY_CA_PATH } from "../ProxyPaths.js"
import type * as Interception from "./Interception.js"
import * as ProxyServer from "./ProxyServer.js"

/** Where the broker serves the operator CA certificate (public part only) when interception is on. */
export const CA_PATH = FORWARD_PROXY_CA_PATH

export interface Options extends ProxyServer.Options {
  /** Set: TLS interception of the upstream host with the operator CA. */
  readonly interception?:
    | {
        readonly minter: Interception.Minter
        /** The CA certificate served at `CA_PATH` (never the key). */
        readonly caCertPem: string
      }
    | undefined
  /** How often a tunnel's session is re-read (a revoked session is cut within this). Default 1000 ms. */
  readonly tunnelCheckMs?: number | undefined
}

/** The reverse proxy's statuses, but a proxy asks for credentials with 407 (RFC 9110 §15.5.8). */
const STATUS: Readonly<Record<string, number>> = { ...ProxyServer.STATUS, Unauthorized: 407 }

const PROXY_AUTHENTICATE = 'Basic realm="aap-proxy"'

type Failure = { readonly _tag: string; readonly message: string; readonly host?: string }

/** Writes a whole HTTP/1.1 error response on a raw (CONNECT) socket and closes it. */
const refuseSocket = (socket: Net.Socket, error: Failure, status = STATUS[error._tag] ?? 500) => {
  if (socket.destroyed) return
  const body = JSON.stringify(ProxyServer.errorBody(error))
  const reason = Http.STATUS_CODES[status] ?? "Error"
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\nconnection: close\r\n${status === 407 ? `proxy-authenticate: ${PROXY_AUTHENTICATE}\r\n` : ""}\r\n${body}`
  )
  // `connection: close`: a client that keeps its half open is dropped shortly after.
  setTimeout(() => socket.destroy(), 5_000).unref()
}

const missingCredentials: Failure = {
  _tag: "Unauthorized",
  message: "proxy authentication required: HTTPS_PROXY=http://<session>:<proxy token>@<broker>"
}

export interface Mounted {
  readonly close: () => void
}

export const mount = (
  server: Http.Server,
  runtime: Runtime.Runtime<EgressProxy.EgressProxy | ForwardProxy.ForwardProxy>,
  options: Options = {}
): Mounted => {
  const forward = Runtime.runSync(runtime)(ForwardProxy.ForwardProxy)
  const runExit = Runtime.runPromiseExit(runtime)
  const runPromise = Runtime.runPromise(runtime)
  const runFork = Runtime.runFork(runtime)
  const handler = ProxyServer.makeHandler(runtime, options)
  const checkEvery = options.tunnelCheckMs ?? 1000
  const idleTimeout = options.idleTimeoutMs ?? 300_000
  const live = new Set<Net.Socket>()

  /** Cuts `sockets` when the tunnel's session ends; returns the stop function. */
  const watch = (tunnel: ForwardProxy.Tunnel, cut: (reason: string) => void) => {
    let stopped = false
    const check = () => {
      runPromise(forward.stillOpen(tunnel)).then(
        (state) => {
          if (state !== "open" && !stopped) cut(state)
        },
        () => {
          if (!stopped) cut("session-check-failed")
        }
      )
    }
    const interval = setInterval(check, checkEvery)
    const untilDeadline = DateTime.toEpochMillis(tunnel.session.expiresAt) - Date.now()
    const deadline = setTimeout(
      () => cut("session-expired"),
      Math.max(0, Math.min(untilDeadline, 2_147_000_000))
    )
    interval.unref()
    deadline.unref()
    return () => {
      stopped = true
      clearInterval(interval)
      clearTimeout(deadline)
    }
  }

  const blind = (tunnel: ForwardProxy.Tunnel, client: Net.Socket, head: Buffer) => {
    const started = performance.now()
    let bytesIn = 0
    let bytesOut = 0
    let reason: string | undefined
    let done = false
    let connected = false
    const upstream = Net.connect({ host: tunnel.target.hostname, port: tunnel.target.port })
    /** `refused`: a refusal is being written to the client; let it flush (`end`), do not destroy. */
    const finish = (outcome: "success" | "error", refused = false) => {
      if (done) return
      done = true
      stop()
      live.delete(client)
      if (!refused) client.destroy()
      upstream.destroy()
      runFork(
        forward.finishTunnel(tunnel, {
          bytesIn,
          bytesOut,
          durationMs: performance.now() - started,
          outcome,
          reason
        })
      )
    }
    const stop = watch(tunnel, (why) => {
      reason ??= why
      finish("error")
    })
    live.add(client)
    upstream.setNoDelay(true)
    client.setNoDelay(true)
    upstream.on("connect", () => {
      connected = true
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n")
      // Relayed bytes count against the session's byte budget (both ways); the chunk that would
      // cross it is not relayed: both sockets are destroyed first (this listener runs before
      // the pipe's), and the tunnel is recorded as `budget:bytes`.
      const budget = tunnel.budget
      const overBudget = (n: number) => {
        if (budget === undefined || budget.addBytes(n)) return false
        reason ??= "budget:bytes"
        finish("error")
        return true
      }
      if (head.length > 0) {
        if (overBudget(head.length)) return
        bytesIn += head.length
        upstream.write(head)
      }
      client.on("data", (c: Buffer) => {
        if (!overBudget(c.length)) bytesIn += c.length
      })
      upstream.on("data", (c: Buffer) => {
        if (!overBudget(c.length)) bytesOut += c.length
      })
      client.pipe(upstream)
      upstream.pipe(client)
    })
    upstream.setTimeout(idleTimeout, () => {
      reason ??= "idle-timeout"
      finish("error")
    })
    upstream.on("error", () => {
      if (!connected) {
        reason ??= "upstream-unreachable"
        refuseSocket(
          client,
          { _tag: "UpstreamUnavailable", message: `${tunnel.target.key} could not be reached` },
          502
        )
        finish("error", true)
        return
      }
      reason ??= "upstream-broke-tunnel"
      finish("error")
    })
    // A side that closes normally has its last bytes flushed to the other (the pipe ends it);
    // the record is written once both are closed. A half-closed peer gets a grace period.
    const closed = (other: Net.Socket) => () => {
      if (client.destroyed && upstream.destroyed) {
        finish(reason === undefined ? "success" : "error")
        return
      }
      other.end()
      setTimeout(() => finish(reason === undefined ? "success" : "error"), 5_000).unref()
    }
    upstream.on("close", closed(client))
    client.on("error", () => {
      reason ??= "client-broke-tunnel"
      finish("error")
    })
    client.on("close", closed(upstream))
  }

  // Inner requests of intercepted tunnels: a private HTTP server fed with the TLS sockets.
  const tunnels = new WeakMap<Net.Socket, { readonly tunnel: ForwardProxy.Tunnel; requests: number }>()
  const inner = Http.createServer({ keepAliveTimeout: 5_000 }, (req, res) => {
    const entry = tunnels.get(req.socket)
    if (entry === undefined) {
      res.destroy()
      return
    }
    entry.requests++
    const tunnel = entry.tunnel
    const url = req.url ?? "/"
    if (!url.startsWith("/")) {
      ProxyServer.sendError(
        res,
        { _tag: "InvalidProxyPath", message: "expected an origin-form request target" },
        400
      )
      req.resume()
      return
    }
    const q = url.indexOf("?")
    handler.handleRequest(
      req,
      res,
      {
        session: tunnel.session.id,
        method: req.method ?? "GET",
        path: q === -1 ? url : url.slice(0, q),
        // The tunnel was authenticated at CONNECT; every inner request presents its token again.
        headers: { ...req.headers, "x-aap-proxy-token": Redacted.value(tunnel.token) },
        upstreamPath: true
      },
      q === -1 ? "" : url.slice(q)
    )
  })
  inner.on("clientError", (_e, socket) => socket.destroy())

  const intercept = (
    tunnel: ForwardProxy.Tunnel,
    client: Net.Socket,
    head: Buffer,
    minter: Interception.Minter
  ) => {
    minter.contextFor(tunnel.target.hostname).then(
      (secureContext) => {
        if (client.destroyed) return
        client.write("HTTP/1.1 200 Connection Established\r\n\r\n")
        if (head.length > 0) client.unshift(head)
        const tls = new Tls.TLSSocket(client, { isServer: true, secureContext, ALPNProtocols: ["http/1.1"] })
        const started = performance.now()
        const entry = { tunnel, requests: 0 }
        let reason: string | undefined
        let secured = false
        let done = false
        // A tunnel idle this long (no handshake, no request, no byte of a stream) is closed.
        tls.setTimeout(idleTimeout, () => {
          reason ??= "idle-timeout"
          tls.destroy()
        })
        tls.once("secure", () => {
          secured = true
        })
        tunnels.set(tls, entry)
        live.add(client)
        const stop = watch(tunnel, (why) => {
          reason ??= why
          tls.destroy()
          client.destroy()
        })
        // One record per tunnel when it closes (its requests have their own): a tunnel opened
        // and used for no request, or refused at the handshake, is on the record too.
        const end = () => {
          if (done) return
          done = true
          stop()
          live.delete(client)
          runFork(
            forward.finishTunnel(tunnel, {
              bytesIn: tls.bytesRead,
              bytesOut: tls.bytesWritten,
              durationMs: performance.now() - started,
              outcome: reason === undefined ? "success" : "error",
              reason,
              requests: entry.requests
            })
          )
        }
        tls.on("close", end)
        tls.on("error", () => {
          reason ??= secured ? "client-broke-tunnel" : "tls-handshake-failed"
          end()
          client.destroy()
        })
        inner.emit("connection", tls)
      },
      (e: unknown) => {
        // The error comes from signing a leaf or building its TLS context (the CA key is a
        // non-extractable WebCrypto key, never part of it).
        runFork(
          Effect.logError("forward proxy: cannot mint a leaf certificate", Cause.die(e)).pipe(
            Effect.annotateLogs({ host: tunnel.target.hostname, session: tunnel.session.id })
          )
        )
        refuseSocket(
          client,
          { _tag: "InternalError", message: "cannot mint a certificate; see the broker log" },
          500
        )
      }
    )
  }

  const onConnect = (req: Http.IncomingMessage, socket: Net.Socket, head: Buffer) => {
    socket.on("error", () => socket.destroy())
    const creds = ForwardProxy.credentials(req.headers["proxy-authorization"])
    if (creds === undefined) {
      refuseSocket(socket, missingCredentials)
      return
    }
    runExit(forward.connect({ session: creds.session, token: creds.token, authority: req.url ?? "" })).then(
      (exit) => {
        if (Exit.isSuccess(exit)) {
          const tunnel = exit.value
          if (tunnel.mode === "blind") blind(tunnel, socket, head)
          else if (options.interception !== undefined)
            intercept(tunnel, socket, head, options.interception.minter)
          else
            refuseSocket(
              socket,
              { _tag: "HostNotAllowed", message: "TLS interception is off on this broker" },
              403
            )
          return
        }
        const failure = Cause.failureOption(exit.cause)
        if (Option.isSome(failure)) refuseSocket(socket, failure.value)
        else {
          runFork(Effect.logError("forward proxy: unexpected failure", exit.cause))
          refuseSocket(socket, { _tag: "InternalError", message: "internal error; see the broker log" }, 500)
        }
      },
      () =>
        refuseSocket(socket, { _tag: "InternalError", message: "internal error; see the broker log" }, 500)
    )
  }

  const absolute = (req: Http.IncomingMessage, res: Http.ServerResponse) => {
    req.resume()
    const refuse = (error: Failure, status = STATUS[error._tag] ?? 500) => {
      if (status === 407) res.setHeader("proxy-authenticate", PROXY_AUTHENTICATE)
      ProxyServer.sendError(res, error, status)
    }
    const creds = ForwardProxy.credentials(req.headers["proxy-authorization"])
    if (creds === undefined) return refuse(missingCredentials)
    let authority: string
    try {
      const u = new URL(req.url ?? "")
      authority = `${u.hostname}:${u.port === "" ? (u.protocol === "https:" ? 443 : 80) : u.port}`
    } catch {
      return refuse(
        { _tag: "HostNotAllowed", message: "malformed absolute-form request target", host: "" },
        403
      )
    }
    runExit(forward.connect({ session: creds.session, token: creds.token, authority })).then((exit) => {
      if (Exit.isFailure(exit)) {
        const failure = Cause.failureOption(exit.cause)
        return refuse(
          Option.isSome(failure) ? failure.value : { _tag: "InternalError", message: "internal error" }
        )
      }
      refuse(
        {
          _tag: "HostNotAllowed",
          message:
            "absolute-form (HTTP_PROXY) requests are not forwarded: use HTTPS_PROXY (CONNECT) or the proxy base URL",
          host: authority
        },
        403
      )
    })
  }

  /** The operator CA certificate, for `aap exec --proxy` to make the agent trust it. */
  const caCertificate = (req: Http.IncomingMessage, res: Http.ServerResponse) => {
    req.resume()
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD")
      ProxyServer.sendError(res, { _tag: "MethodNotAllowed", message: `${CA_PATH} only answers GET` }, 405)
      return
    }
    if (options.interception === undefined) {
      ProxyServer.sendError(
        res,
        { _tag: "NotFound", message: "TLS interception is off on this broker (no AAP_PROXY_CA_CERT)" },
        404
      )
      return
    }
    const pem = options.interception.caCertPem
    res.writeHead(200, {
      "content-type": "application/x-pem-file",
      "content-length": Buffer.byteLength(pem),
      "cache-control": "no-store"
    })
    res.end(req.method === "HEAD" ? undefined : pem)
  }

  const emit = server.emit
  server.emit = function (this: Http.Server, event: string | symbol, ...args: Array<unknown>): boolean {
    if (event === "request") {
      const req = args[0] as Http.IncomingMessage
      if (req.url !== undefined && !req.url.startsWith("/") && req.url !== "*") {
        absolute(req, args[1] as Http.ServerResponse)
        return true
      }
      if (req.url === CA_PATH) {
        caCertificate(req, args[1] as Http.ServerResponse)
        return true
      }
    }
    return Reflect.apply(emit, this, [event, ...args]) as boolean
  } as typeof server.emit
  server.on("connect", onConnect)

  return {
    close: () => {
      server.emit = emit
      server.off("connect", onConnect)
      for (const s of live) s.destroy()
      live.clear()
      handler.close()
      inner.close()
    }
  }
}

/** Mounts the forward mode on `server` for the lifetime of the layer. */
export const layerMount = (
  server: Http.Server,
  options: Options = {}
): Layer.Layer<never, never, EgressProxy.EgressProxy | ForwardProxy.ForwardProxy> =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      const runtime = yield* Effect.runtime<EgressProxy.EgressProxy | ForwardProxy.ForwardProxy>()
      const mounted = mount(server, runtime, options)
      yield* Effect.addFinalizer(() => Effect.sync(() => mounted.close()))
    })
  )
