/**
 * The egress proxy's forward mode (issue 12, ADR 0081): `HTTPS_PROXY=http://<session>:<proxy
 * token>@<broker>` for agents that cannot change a base URL.
 *
 * - `credentials`: the session id and proxy token from `Proxy-Authorization: Basic`
 *   (`undefined` when absent or malformed; the broker answers 407 and audits nothing).
 * - `connect`: one CONNECT. The same admission as `EgressProxy.open` steps 1-3 (token MAC for
 *   the session, the session `active` and before its deadline, the catalog in force now, and the
 *   capability declaring the forward mode with `proxy.connect`, possibly empty), then the target: the capability's upstream `host:port` is intercepted when the broker has an
 *   operator CA, and refused otherwise (the agent holds no key; it must use the base URL); a
 *   `proxy.connect` target is a blind tunnel; anything else is refused (`HostNotAllowed`).
 *   Refusals after a valid token are audited (`proxy.request`, `outcome: denied`).
 * - `stillOpen`: whether a tunnel's session is still active and its target still allowed (the
 *   broker asks on a timer and cuts the tunnel when it is not). It fails when it cannot tell
 *   (the store unavailable, a tampered session item): the broker cuts the tunnel then too,
 *   recording `session-check-failed`.
 * - `finishTunnel`: the one `proxy.request` record of a blind tunnel (`method: CONNECT`, host,
 *   bytes each way, duration). Inner requests of an intercepted tunnel go through
 *   `EgressProxy.open` / `finish` one by one and are audited like reverse-proxy requests.
 *
 * @since 0.1.0
 */
import { AuditLog } from "@aap/audit"
import type { Catalog } from "@aap/catalog"
import { SystemKeys } from "@aap/key-custody"
import { Clock, Context, DateTime, Effect, Layer, Redacted } from "effect"
import { CurrentCatalog } from "../CurrentCatalog.js"
import { SessionNotActive } from "../delivery/Api.js"
import { Sessions, type SessionView } from "../delivery/Ports.js"
import { Expired, RequestDenied, type Tampered, Unauthorized, type Unavailable } from "../Errors.js"
import { type Budget, EgressProxy } from "./EgressProxy.js"
import { HostNotAllowed, NotProxied, type ProxyBudgetExceeded } from "./ProxyErrors.js"
import * as ProxyPolicy from "./ProxyPolicy.js"
import * as ProxyToken from "./ProxyToken.js"

/** Whether the broker terminates TLS for upstream hosts (an operator CA is configured). */
export class ForwardConfig extends Context.Tag("@aap/agent-coordination/ForwardConfig")<
  ForwardConfig,
  { readonly intercept: boolean }
>() {}

export const layerConfig = (config: { readonly intercept: boolean }): Layer.Layer<ForwardConfig> =>
  Layer.succeed(ForwardConfig, config)

/** `host:port` split and normalised (lower-case host, brackets kept off IPv6). */
export interface Authority {
  readonly hostname: string
  readonly port: number
  /** `host:port`, what the allow-list holds. */
  readonly key: string
}

/** Parses a CONNECT request target (`host:port`, `[v6]:port`); `undefined` when malformed. */
export const parseAuthority = (raw: string): Authority | undefined => {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253}):([0-9]{1,5})$/.exec(raw)
  if (m === null) return undefined
  const port = Number(m[2])
  if (port < 1 || port > 65535) return undefined
  const host = (m[1] as string).toLowerCase()
  const hostname = host.startsWith("[") ? host.slice(1, -1) : host
  return { hostname, port, key: `${host}:${port}` }
}

/** `Proxy-Authorization: Basic base64(session:token)` → both, or `undefined`. */
export const credentials = (
  header: string | ReadonlyArray<string> | undefined
): { readonly session: string; readonly token: string } | undefined => {
  const value = typeof header === "string" ? header : header?.[0]
  if (value === undefined) return undefined
  const m = /^\s*basic\s+([A-Za-z0-9+/=_-]{1,1024})\s*$/i.exec(value)
  if (m === null) return undefined
  const decoded = Buffer.from(m[1] as string, "base64").toString("utf8")
  const colon = decoded.indexOf(":")
  if (colon <= 0) return undefined
  const session = decodeURIComponentSafe(decoded.slice(0, colon))
  const token = decodeURIComponentSafe(decoded.slice(colon + 1))
  if (session === undefined || token === undefined) return undefined
  return { session, token }
}

const decodeURIComponentSafe = (s: string): string | undefined => {
  try {
    return decodeURIComponent(s)
  } catch {
    return undefined
  }
}

/** What a CONNECT opens. */
export interface Tunnel {
  readonly mode: "intercept" | "blind"
  readonly session: SessionView
  readonly capability: string
  readonly target: Authority
  /** The proxy token the tunnel was opened with (inner requests present it). Never log it. */
  readonly token: Redacted.Redacted<string>
  readonly tokenFingerprint: string
  readonly proxy: Catalog.BearerProxy
  /**
   * Blind tunnels: the session's budget, of which the tunnel took one request; the bytes relayed
   * (both ways) count against its byte budget, and the tunnel is cut when they would cross it.
   * Intercepted tunnels have none: each request inside is budgeted on its own.
   */
  readonly budget?: Budget | undefined
}

export interface TunnelFacts {
  readonly bytesIn: number
  readonly bytesOut: number
  readonly durationMs: number
  readonly outcome: "success" | "error"
  /** Why the tunnel ended when the broker cut it (`session-ended`, `idle-timeout`...). */
  readonly reason?: string | undefined
  /** Intercepted tunnels: the HTTP requests made inside (each has its own record). */
  readonly requests?: number | undefined
}

/**
 * What `stillOpen` finds: `open`, or why the tunnel must be cut — the session no longer
 * active (or gone), past its deadline, or the catalog in force no longer allows the tunnel
 * (the capability, the agent's grant, the forward mode or the target were removed).
 */
export type TunnelState = "open" | "session-ended" | "session-expired" | "catalog-changed"

export type ConnectError =
  | Unauthorized
  | Expired
  | SessionNotActive
  | RequestDenied
  | NotProxied
  | HostNotAllowed
  | ProxyBudgetExceeded
  | Unavailable
  | Tampered

export interface ForwardShape {
  readonly connect: (request: {
    readonly session: string
    readonly token: string
    readonly authority: string
  }) => Effect.Effect<Tunnel, ConnectError>
  readonly stillOpen: (tunnel: Tunnel) => Effect.Effect<TunnelState, Tampered | Unavailable>
  readonly finishTunnel: (tunnel: Tunnel, facts: TunnelFacts) => Effect.Effect<void>
}

export class ForwardProxy extends Context.Tag("@aap/agent-coordination/ForwardProxy")<
  ForwardProxy,
  ForwardShape
>() {}

const upstreamKey = (proxy: Catalog.BearerProxy): string => {
  const u = ProxyPolicy.upstreamOf(proxy)
  return `${u.hostname.toLowerCase()}:${u.port}`
}

const connectTargets = (proxy: Catalog.BearerProxy): ReadonlyArray<string> =>
  (proxy.connect ?? []).map((c) => {
    const colon = c.lastIndexOf(":")
    return `${c.slice(0, colon).toLowerCase()}:${Number(c.slice(colon + 1))}`
  })

export const make: Effect.Effect<
  ForwardShape,
  never,
  Sessions | CurrentCatalog | AuditLog.AuditLog | SystemKeys.SystemKeys | ForwardConfig | EgressProxy
> = Effect.gen(function* () {
  const sessions = yield* Sessions
  const egress = yield* EgressProxy
  const catalog = yield* CurrentCatalog
  const audit = yield* AuditLog.AuditLog
  const config = yield* ForwardConfig
  const key = Redacted.value(yield* (yield* SystemKeys.SystemKeys).hmacKey(ProxyToken.PURPOSE))

  const unauthorized = new Unauthorized({
    message: "missing or invalid proxy credentials (Proxy-Authorization: Basic <session>:<proxy token>)"
  })

  const auditRefusal = (session: SessionView, authority: string, reason: string) =>
    audit
      .append({
        actor: { type: "agent", id: session.agent },
        action: "proxy.request",
        outcome: "denied",
        capability: session.capability,
        session: session.id,
        wallet: session.wallet,
        tier: session.tier,
        reason,
        details: { method: "CONNECT", upstream: authority.slice(0, 270) }
      })
      .pipe(Effect.ignore)

  /** Session and catalog as `EgressProxy.open` steps 2-3 check them; `undefined` + the refusal otherwise. */
  const admit = (session: SessionView, authority: string) =>
    Effect.gen(function* () {
      const refuse = <E extends ConnectError>(error: E, reason: string) =>
        auditRefusal(session, authority, reason).pipe(Effect.zipRight(Effect.fail(error)))
      const now = yield* Clock.currentTimeMillis
      if (
        session.status === "expired" ||
        (session.status === "active" && now >= DateTime.toEpochMillis(session.expiresAt))
      ) {
        return yield* refuse(
          new Expired({ message: "the session has expired", session: session.id }),
          "expired"
        )
      }
      if (session.status !== "active") {
        return yield* refuse(
          new SessionNotActive({
            message: `the session is ${session.status}, not active`,
            session: session.id,
            status: session.status
          }),
          `not-active:${session.status}`
        )
      }
      const current = yield* catalog.get
      const denied = (reason: RequestDenied["reason"], message: string) =>
        refuse(new RequestDenied({ message, reason, capability: session.capability }), reason)
      const agent = current.agents.find((a) => a.id === session.agent)
      if (agent === undefined) return yield* denied("unknown-agent", "the agent is no longer in the catalog")
      const capability = current.capabilities.find((c) => c.id === session.capability)
      if (capability === undefined) {
        return yield* denied("unknown-capability", "the capability is no longer in the catalog")
      }
      if (!capability.agents.some((a) => a === session.agent) || agent.wallet !== session.wallet) {
        return yield* denied(
          "agent-not-allowed",
          "the catalog no longer allows this agent to use the capability"
        )
      }
      const backing = capability.backing
      if (backing.type !== "bearer-token" || backing.proxy === undefined) {
        return yield* refuse(
          new NotProxied({
            message: "the session's capability is not used through the proxy",
            capability: capability.id
          }),
          "not-proxied"
        )
      }
      return { capability: capability.id, proxy: backing.proxy, refuse }
    })

  const connect: ForwardShape["connect"] = (request) =>
    Effect.gen(function* () {
      if (!ProxyToken.verify(key, request.session, request.token)) return yield* unauthorized
      const session = yield* sessions
        .get(request.session)
        .pipe(Effect.catchTag("SessionMissing", () => Effect.fail(unauthorized)))
      const admitted = yield* admit(session, request.authority)
      if (admitted.proxy.connect === undefined) {
        return yield* admitted.refuse(
          new HostNotAllowed({
            message:
              "this capability does not use the forward-proxy mode (no proxy.connect in the catalog): use the proxy base URL from delivery (AAP_PROXY_URL / <PREFIX>_BASE_URL)",
            host: request.authority.slice(0, 270)
          }),
          "forward-off"
        )
      }
      const target = parseAuthority(request.authority)
      if (target === undefined) {
        return yield* admitted.refuse(
          new HostNotAllowed({
            message: "the CONNECT target is not host:port",
            host: request.authority.slice(0, 270)
          }),
          "host-not-allowed"
        )
      }
      const base = {
        session,
        capability: admitted.capability,
        target,
        token: Redacted.make(request.token),
        tokenFingerprint: ProxyToken.fingerprint(request.token),
        proxy: admitted.proxy
      }
      if (target.key === upstreamKey(admitted.proxy)) {
        if (config.intercept) return { ...base, mode: "intercept" } satisfies Tunnel
        return yield* admitted.refuse(
          new HostNotAllowed({
            message: `CONNECT to ${target.key} is not tunnelled: the proxy injects the key only when it terminates TLS, and this broker has no interception CA (AAP_PROXY_CA_CERT). Use the proxy base URL from delivery (AAP_PROXY_URL / <PREFIX>_BASE_URL) instead`,
            host: target.key
          }),
          "interception-off"
        )
      }
      if (connectTargets(admitted.proxy).includes(target.key)) {
        const budget = yield* egress
          .tunnelBudget(session)
          .pipe(Effect.catchTag("ProxyBudgetExceeded", (e) => admitted.refuse(e, `budget:${e.limit}`)))
        return { ...base, mode: "blind", budget } satisfies Tunnel
      }
      return yield* admitted.refuse(
        new HostNotAllowed({
          message: `CONNECT to ${target.key} is not allowed for this capability (allowed: ${[upstreamKey(admitted.proxy), ...connectTargets(admitted.proxy)].join(", ")})`,
          host: target.key
        }),
        "host-not-allowed"
      )
    })

  const stillOpen: ForwardShape["stillOpen"] = (tunnel) =>
    Effect.gen(function* () {
      const session = yield* sessions
        .get(tunnel.session.id)
        .pipe(Effect.catchTag("SessionMissing", () => Effect.succeed(undefined)))
      if (session === undefined || session.status !== "active") return "session-ended" as const
      const now = yield* Clock.currentTimeMillis
      if (now >= DateTime.toEpochMillis(session.expiresAt)) return "session-expired" as const
      const current = yield* catalog.get
      const capability = current.capabilities.find((c) => c.id === tunnel.capability)
      if (capability === undefined || !capability.agents.some((a) => a === session.agent))
        return "catalog-changed" as const
      const backing = capability.backing
      if (backing.type !== "bearer-token" || backing.proxy?.connect === undefined)
        return "catalog-changed" as const
      const allowed =
        tunnel.mode === "intercept"
          ? upstreamKey(backing.proxy) === tunnel.target.key
          : connectTargets(backing.proxy).includes(tunnel.target.key)
      return allowed ? ("open" as const) : ("catalog-changed" as const)
    })

  const finishTunnel: ForwardShape["finishTunnel"] = (tunnel, facts) =>
    audit
      .append({
        actor: { type: "agent", id: tunnel.session.agent },
        action: "proxy.request",
        outcome: facts.outcome,
        capability: tunnel.capability,
        session: tunnel.session.id,
        wallet: tunnel.session.wallet,
        tier: tunnel.session.tier,
        ...(facts.reason === undefined ? {} : { reason: facts.reason }),
        details: {
          method: "CONNECT",
          mode: tunnel.mode,
          upstream: tunnel.target.key,
          bytesIn: facts.bytesIn,
          bytesOut: facts.bytesOut,
          durationMs: Math.round(facts.durationMs),
          ...(facts.requests === undefined ? {} : { requests: facts.requests }),
          token: tunnel.tokenFingerprint
        }
      })
      .pipe(
        Effect.asVoid,
        Effect.catchAll(() =>
          Effect.logError("proxy tunnel audit append failed").pipe(
            Effect.annotateLogs({ session: tunnel.session.id })
          )
        )
      )

  return ForwardProxy.of({ connect, stillOpen, finishTunnel })
})

export const layer: Layer.Layer<
  ForwardProxy,
  never,
  Sessions | CurrentCatalog | AuditLog.AuditLog | SystemKeys.SystemKeys | ForwardConfig | EgressProxy
> = Layer.effect(ForwardProxy, make)
