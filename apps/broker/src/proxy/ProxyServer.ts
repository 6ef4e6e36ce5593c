/**
 * The egress proxy's streaming edge (issue 12, ADR 0080): `/v1/proxy/<session>/...` handled at
 * the node:http level, before the Effect HttpApi app.
 *
 * Why not an HttpApi endpoint: the HttpApi decodes (buffers) bodies, and the broker's HTTP
 * stack applies a 256 KiB body limit and a 10 s request timeout to every route, which would
 * cut long LLM streams. Here request and response bodies are piped socket to socket: every
 * chunk the upstream writes (an SSE event) is written to the agent as it arrives, and the
 * agent's request body reaches the upstream as it is sent. Only the decisions run as Effects
 * (`EgressProxy.open` before the first upstream byte, `EgressProxy.finish` after the last).
 *
 * @since 0.1.0
 */
import type * as Http from "node:http"
import * as Https from "node:https"
import * as Tls from "node:tls"
import { EgressProxy } from "@aap/agent-coordination"
import { Cause, Effect, Exit, Layer, Option, Redacted, Runtime } from "effect"

const { ProxyPolicy } = EgressProxy

/** The path prefix of proxied requests. */
export const PREFIX = "/v1/proxy/"

export interface Options {
  /** Extra PEM CA certificates trusted for upstreams (internal upstreams, tests); system CAs stay trusted. */
  readonly upstreamCa?: string | undefined
  /** Time allowed from sending the request to the upstream's response headers. Default 60 s. */
  readonly responseHeadersTimeoutMs?: number | undefined
  /** A proxied stream with no byte in either direction for this long is closed. Default 5 min. */
  readonly idleTimeoutMs?: number | undefined
  /** Keep-alive sockets per upstream host. Default 256. */
  readonly maxSocketsPerHost?: number | undefined
}

/** The HTTP status of each error tag (the forward mode answers `Unauthorized` with 407). */
export const STATUS: Readonly<Record<string, number>> = {
  Unauthorized: 401,
  InvalidProxyPath: 400,
  PathNotAllowed: 403,
  MethodNotAllowed: 403,
  NotProxied: 403,
  HostNotAllowed: 403,
  RequestDenied: 403,
  NotFound: 404,
  SessionNotActive: 409,
  Expired: 410,
  ProxyBudgetExceeded: 429,
  Tampered: 500,
  UpstreamUnavailable: 502,
  AuditUnavailable: 503,
  CredentialUnavailable: 503,
  Unavailable: 503,
  ShuttingDown: 503,
  UpstreamTimeout: 504
}

/** `{ _tag, message, ...typed fields }`; never a header value, a body or a secret. */
export const errorBody = (error: {
  readonly _tag: string
  readonly message: string
}): Record<string, unknown> => {
  const body: Record<string, unknown> = { _tag: error._tag, message: error.message }
  for (const [k, v] of Object.entries(error)) {
    if (k === "cause" || k === "stack" || k === "_tag" || k === "message") continue
    if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") body[k] = v
  }
  return body
}

export const sendError = (
  res: Http.ServerResponse,
  error: { readonly _tag: string; readonly message: string },
  status = STATUS[error._tag] ?? 500
) => {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const payload = JSON.stringify(errorBody(error))
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(payload),
    "cache-control": "no-store",
    ...(status === 401 ? { "www-authenticate": 'Bearer realm="aap-proxy"' } : {})
  })
  res.end(payload)
}

/** Splits `/v1/proxy/<session>/<rest>?<query>`; `undefined` when the URL is not a proxy URL. */
export const parseTarget = (
  url: string
): { readonly session: string; readonly path: string; readonly query: string } | undefined => {
  if (!url.startsWith(PREFIX)) return undefined
  const q = url.indexOf("?")
  const pathPart = q === -1 ? url : url.slice(0, q)
  const query = q === -1 ? "" : url.slice(q)
  const rest = pathPart.slice(PREFIX.length)
  const slash = rest.indexOf("/")
  const session = slash === -1 ? rest : rest.slice(0, slash)
  const path = slash === -1 ? "" : rest.slice(slash)
  return { session, path, query }
}

export interface Handler {
  /** Handle a proxy request (the caller checked `parseTarget(req.url)`). */
  readonly handle: (req: Http.IncomingMessage, res: Http.ServerResponse) => void
  /** Decide `request` (already parsed: forward mode, ADR 0081) and forward it with `query`. */
  readonly handleRequest: (
    req: Http.IncomingMessage,
    res: Http.ServerResponse,
    request: EgressProxy.ProxyRequest,
    query: string
  ) => void
  /** Sockets and agents to release on shutdown. */
  readonly close: () => void
}

/** The streaming handler over a runtime that provides `EgressProxy`. */
export const makeHandler = (
  runtime: Runtime.Runtime<EgressProxy.EgressProxy>,
  options: Options = {}
): Handler => {
  const proxy = Runtime.runSync(runtime)(EgressProxy.EgressProxy)
  const runExit = Runtime.runPromiseExit(runtime)
  const runFork = Runtime.runFork(runtime)
  const agent = new Https.Agent({
    keepAlive: true,
    maxSockets: options.maxSocketsPerHost ?? 256,
    // One secure context, built once: a `ca` option would be serialised into the pool key
    // (`Agent.getName`) on every request, which costs milliseconds with the system roots.
    ...(options.upstreamCa === undefined
      ? {}
      : { secureContext: Tls.createSecureContext({ ca: [...Tls.rootCertificates, options.upstreamCa] }) })
  })
  const headersTimeout = options.responseHeadersTimeoutMs ?? 60_000
  const idleTimeout = options.idleTimeoutMs ?? 300_000

  const forward = (
    req: Http.IncomingMessage,
    res: Http.ServerResponse,
    grant: EgressProxy.Grant,
    query: string
  ) => {
    const started = performance.now()
    const upstream = grant.target.upstream
    let bytesIn = 0
    let bytesOut = 0
    let status = 0
    let reason: string | undefined
    let done = false
    const secret = Redacted.value(grant.secret)
    if (res.destroyed || req.destroyed) {
      // The agent went away while the request was being decided: nothing is forwarded.
      runFork(
        proxy.finish(grant, {
          status: 0,
          bytesIn: 0,
          bytesOut: 0,
          durationMs: 0,
          outcome: "error",
          reason: "client-closed"
        })
      )
      return
    }

    const upReq = Https.request({
      agent,
      host: upstream.hostname,
      port: upstream.port,
      // SNI only for names (an IP literal as servername is refused by TLS).
      ...(/^[0-9.]+$|:/.test(upstream.hostname) ? {} : { servername: upstream.hostname }),
      method: grant.method,
      path: `${grant.target.path}${query}`,
      headers: ProxyPolicy.upstreamRequestHeaders(
        req.headers,
        grant.proxy,
        upstream.host,
        Redacted.value(grant.credential)
      )
    })

    // Small writes (SSE events) must leave at once, not wait for the peer's delayed ACK.
    upReq.setNoDelay(true)
    res.socket?.setNoDelay(true)

    const complete = (outcome: "success" | "error") => {
      if (done) return
      done = true
      runFork(
        proxy.finish(grant, {
          status,
          bytesIn,
          bytesOut,
          durationMs: performance.now() - started,
          outcome,
          reason
        })
      )
    }

    const abort = (why: string) => {
      if (reason === undefined) reason = why
      upReq.destroy()
      req.unpipe(upReq)
    }

    const headersTimer = setTimeout(() => {
      if (status !== 0) return
      reason = "upstream-timeout"
      status = 504
      sendError(res, { _tag: "UpstreamTimeout", message: "the upstream sent no response in time" })
      upReq.destroy()
      complete("error")
    }, headersTimeout)

    const overBudget = () =>
      new EgressProxy.ProxyBudgetExceeded({
        message: `the session moved its ${grant.budget.maxBytes} bytes`,
        limit: "bytes",
        used: grant.budget.usedBytes(),
        budget: grant.budget.maxBytes
      })
    // Request body bytes count against the session's byte budget as they arrive; the chunk that
    // would cross it is not forwarded, the upstream request is aborted and the agent gets 429
    // (or, when the response already started, a cut stream). The rest of the body is discarded.
    const onRequestData = (chunk: Buffer) => {
      if (!grant.budget.addBytes(chunk.length)) {
        req.off("data", onRequestData)
        abort("budget:bytes")
        if (status === 0) status = 429
        sendError(res, overBudget())
        complete("error")
        req.resume()
        return
      }
      bytesIn += chunk.length
    }
    req.on("data", onRequestData)
    req.pipe(upReq)
    req.on("aborted", () => abort("client-aborted"))

    upReq.on("error", () => {
      clearTimeout(headersTimer)
      if (done) return
      if (status === 0) {
        status = 502
        reason ??= "upstream-unreachable"
        sendError(res, { _tag: "UpstreamUnavailable", message: "the upstream could not be reached" })
      } else {
        reason ??= "upstream-broke-stream"
        res.destroy()
      }
      complete("error")
    })

    upReq.on("response", (upRes) => {
      clearTimeout(headersTimer)
      if (done) {
        upRes.destroy()
        return
      }
      status = upRes.statusCode ?? 502
      res.writeHead(status, upRes.statusMessage, ProxyPolicy.downstreamResponseHeaders(upRes.headers, secret))
      // A streamed response (no length) shows its headers at once; a sized one leaves with its body.
      if (upRes.headers["content-length"] === undefined) res.flushHeaders()
      upRes.on("data", (chunk: Buffer) => {
        // The chunk that would cross the byte budget is not forwarded: the stream is cut there
        // (no terminating chunk, so the agent sees it end early) and audited as `budget:bytes`.
        if (!grant.budget.addBytes(chunk.length)) {
          reason ??= "budget:bytes"
          upRes.destroy()
          res.destroy()
          complete("error")
          return
        }
        bytesOut += chunk.length
        if (!res.write(chunk)) upRes.pause()
      })
      res.on("drain", () => upRes.resume())
      upRes.on("end", () => {
        res.end()
      })
      upRes.on("error", () => {
        reason ??= "upstream-broke-stream"
        res.destroy()
        complete("error")
      })
    })

    res.on("finish", () => complete(reason === undefined ? "success" : "error"))
    res.on("close", () => {
      clearTimeout(headersTimer)
      if (!res.writableFinished) {
        reason ??= "client-closed"
        upReq.destroy()
        complete("error")
      }
    })
    upReq.setTimeout(idleTimeout, () => {
      reason ??= "idle-timeout"
      upReq.destroy()
      res.destroy()
    })
  }

  const handle = (req: Http.IncomingMessage, res: Http.ServerResponse) => {
    const target = parseTarget(req.url ?? "")
    if (target === undefined) {
      sendError(res, { _tag: "NotFound", message: "not a proxy URL" })
      return
    }
    handleRequest(
      req,
      res,
      { session: target.session, method: req.method ?? "GET", path: target.path, headers: req.headers },
      target.query
    )
  }

  const handleRequest = (
    req: Http.IncomingMessage,
    res: Http.ServerResponse,
    request: EgressProxy.ProxyRequest,
    query: string
  ) => {
    runExit(proxy.open(request)).then(
      (exit) => {
        if (Exit.isSuccess(exit)) {
          forward(req, res, exit.value, query)
          return
        }
        const failure = Cause.failureOption(exit.cause)
        if (Option.isSome(failure)) {
          sendError(res, failure.value)
        } else {
          runFork(Effect.logError("proxy: unexpected failure", exit.cause))
          sendError(res, { _tag: "InternalError", message: "internal error; see the broker log" }, 500)
        }
        req.resume()
      },
      () => sendError(res, { _tag: "InternalError", message: "internal error; see the broker log" }, 500)
    )
  }

  return { handle, handleRequest, close: () => agent.destroy() }
}

/**
 * Routes `/v1/proxy/...` requests of `server` to the streaming handler, ahead of every other
 * `request` listener (the Effect app), for the lifetime of the layer. Everything else passes
 * through untouched.
 */
export const layerMount = (
  server: Http.Server,
  options: Options = {}
): Layer.Layer<never, never, EgressProxy.EgressProxy> =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      const runtime = yield* Effect.runtime<EgressProxy.EgressProxy>()
      const handler = makeHandler(runtime, options)
      const emit = server.emit
      const dispatch = function (
        this: Http.Server,
        event: string | symbol,
        ...args: Array<unknown>
      ): boolean {
        if (event === "request") {
          const req = args[0] as Http.IncomingMessage
          if (req.url?.startsWith(PREFIX)) {
            handler.handle(req, args[1] as Http.ServerResponse)
            return true
          }
        }
        return Reflect.apply(emit, this, [event, ...args]) as boolean
      }
      server.emit = dispatch as typeof server.emit
      // Delivered base URLs use the bound address unless a public URL is configured.
      const proxy = yield* EgressProxy.EgressProxy
      const report = () => {
        const address = server.address()
        if (address === null || typeof address === "string") return
        const host = address.family === "IPv6" ? `[${address.address}]` : address.address
        Runtime.runSync(runtime)(proxy.listening(`http://${host}:${address.port}`))
      }
      if (server.listening) report()
      else server.once("listening", report)
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          server.emit = emit
          handler.close()
        })
      )
    })
  )
