/**
 * The egress proxy's decisions (DESIGN §2.6 and §9, issue 12; ADR 0080): Class B keys the
 * agent never holds.
 *
 * - `issue`: delivery of a capability with a `proxy` block returns the proxy base URL
 *   (`<broker>/v1/proxy/<session>`) and a proxy token bound to the session, never the key.
 * - `open`: one proxied request. Checks, in order and before any upstream byte: the token's MAC
 *   for the session in the URL (no store read for a forged token; a token that verified is
 *   remembered, so its next requests skip the HMAC), the session (exists, `active`,
 *   deadline not passed — read on every request through the `Sessions` port, which the broker
 *   caches for a bounded time), the catalog in force now (the agent still listed, the wallet
 *   unchanged, the capability still proxied), the path (traversal) and the allow-lists of path
 *   and method, the session's request and byte budgets; then reads the key from the vault
 *   (through the `Secrets` port, cached by the broker for a bounded time) and returns where to
 *   send the request and the credential header to inject.
 * - `finish`: the `proxy.request` audit record of a forwarded request (method, upstream path,
 *   status, bytes each way, duration — never a body, a query string or a header value).
 *
 * The streaming itself (node sockets) lives in the broker, the only place effects run.
 *
 * @since 0.1.0
 */
import { type AuditError, AuditLog } from "@aap/audit"
import type { Catalog } from "@aap/catalog"
import { SystemKeys } from "@aap/key-custody"
import { Clock, Context, DateTime, Effect, Either, Layer, Redacted } from "effect"
import { CurrentCatalog } from "../CurrentCatalog.js"
import { CredentialUnavailable, SessionNotActive } from "../delivery/Api.js"
import { Secrets, Sessions, type SessionView } from "../delivery/Ports.js"
import { Expired, RequestDenied, type Tampered, Unauthorized, type Unavailable } from "../Errors.js"
import type { ProxyCredential } from "./ProxyCredential.js"
import {
  InvalidProxyPath,
  MethodNotAllowed,
  NotProxied,
  PathNotAllowed,
  ProxyBudgetExceeded
} from "./ProxyErrors.js"
import * as ProxyPolicy from "./ProxyPolicy.js"
import * as ProxyToken from "./ProxyToken.js"

export { ProxyCredential } from "./ProxyCredential.js"
export * from "./ProxyErrors.js"
export * as ProxyPolicy from "./ProxyPolicy.js"
export * as ProxyToken from "./ProxyToken.js"

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

export interface ProxyConfigShape {
  /**
   * The broker's base URL as agents reach it (`https://aap.example.org`), no trailing slash.
   * Unset: the URL the broker reports through `listening` once bound.
   */
  readonly publicUrl?: string | undefined
  /** Proxied requests one session may make (per broker instance). */
  readonly maxRequestsPerSession: number
  /** Request plus response body bytes one session may move (per broker instance). */
  readonly maxBytesPerSession: number
}

export class ProxyConfig extends Context.Tag("@aap/agent-coordination/ProxyConfig")<
  ProxyConfig,
  ProxyConfigShape
>() {}

export const defaultConfig: ProxyConfigShape = {
  maxRequestsPerSession: 10_000,
  maxBytesPerSession: 1024 * 1024 * 1024
}

export const layerConfig = (config: Partial<ProxyConfigShape>): Layer.Layer<ProxyConfig> =>
  Layer.succeed(ProxyConfig, {
    ...defaultConfig,
    ...config,
    publicUrl: config.publicUrl?.replace(/\/+$/, "")
  })

// ---------------------------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------------------------

type HeaderValue = string | ReadonlyArray<string> | undefined

/** One proxied request as the broker received it. */
export interface ProxyRequest {
  /** The session id from the URL. */
  readonly session: string
  readonly method: string
  /** The raw path after `/v1/proxy/<session>`, without the query string. */
  readonly path: string
  /**
   * Forward-proxy mode (ADR 0081): `path` is the full upstream path the client sent inside an
   * intercepted tunnel or in absolute form (base path included), matched as it is.
   */
  readonly upstreamPath?: boolean | undefined
  readonly headers: Readonly<Record<string, HeaderValue>>
}

/** The session's budget as seen by one request; byte counting is synchronous (hot path). */
export interface Budget {
  /**
   * Counts `n` body bytes about to be moved; `false` (and nothing counted) when they would take
   * the session over its byte budget: the caller must not move them and cuts the exchange.
   */
  readonly addBytes: (n: number) => boolean
  /** Body bytes the session moved so far (this instance). */
  readonly usedBytes: () => number
  /** The session's byte budget. */
  readonly maxBytes: number
}

/** A request the proxy lets through. Holds the key: never log it, never return it. */
export interface Grant {
  readonly session: SessionView
  readonly capability: string
  /** The request method, upper case. */
  readonly method: string
  readonly proxy: Catalog.BearerProxy
  readonly target: ProxyPolicy.Target
  /** The header value to inject (scheme included). */
  readonly credential: Redacted.Redacted<string>
  /** The bare key, to keep it out of response headers. */
  readonly secret: Redacted.Redacted<string>
  readonly budget: Budget
  readonly tokenFingerprint: string
}

/** What `finish` records. */
export interface Facts {
  readonly status: number
  readonly bytesIn: number
  readonly bytesOut: number
  readonly durationMs: number
  /** `error` when the upstream failed or a side broke the stream; `reason` says which. */
  readonly outcome: "success" | "error"
  readonly reason?: string | undefined
}

export type OpenError =
  | Unauthorized
  | Expired
  | SessionNotActive
  | RequestDenied
  | NotProxied
  | InvalidProxyPath
  | PathNotAllowed
  | MethodNotAllowed
  | ProxyBudgetExceeded
  | CredentialUnavailable
  | AuditError.AuditUnavailable
  | Unavailable
  | Tampered

/** What delivery hands the agent for a proxied capability. */
export interface Issued {
  readonly credential: ProxyCredential
  readonly env: Record<string, Redacted.Redacted<string>>
  readonly details: Record<string, string | number | boolean>
  /** The proxy token, HMAC'd into the `credential.issued` record. */
  readonly sensitive: Redacted.Redacted<string>
}

export interface ProxyShape {
  /** Mint the proxy credential for an active session of a proxied capability. */
  readonly issue: (session: SessionView, backing: Catalog.BearerToken) => Effect.Effect<Issued>
  /** Decide one request (see the module doc). Refusals after a valid token are audited. */
  readonly open: (request: ProxyRequest) => Effect.Effect<Grant, OpenError>
  /** The broker's bound URL (`http://127.0.0.1:8787`); used for delivered base URLs unless `publicUrl` is configured. */
  readonly listening: (url: string) => Effect.Effect<void>
  /** Append the `proxy.request` record of a forwarded request. Never fails (a failure closes the proxy until the audit is back). */
  readonly finish: (grant: Grant, facts: Facts) => Effect.Effect<void>
  /**
   * A blind tunnel (forward mode) of an admitted session takes one request of the session's
   * budget and moves its bytes against the session's byte budget, like a proxied request; it
   * fails with `ProxyBudgetExceeded` (not audited here: the caller records the refusal).
   */
  readonly tunnelBudget: (session: SessionView) => Effect.Effect<Budget, ProxyBudgetExceeded>
}

export class EgressProxy extends Context.Tag("@aap/agent-coordination/EgressProxy")<
  EgressProxy,
  ProxyShape
>() {}

/** `OPENROUTER_API_KEY` → `OPENROUTER_BASE_URL` (the variable SDKs read their base URL from). */
export const baseUrlVariable = (envName: string): string => {
  for (const suffix of ["_API_KEY", "_API_TOKEN", "_KEY", "_TOKEN"]) {
    if (envName.endsWith(suffix) && envName.length > suffix.length) {
      return `${envName.slice(0, -suffix.length)}_BASE_URL`
    }
  }
  return `${envName}_BASE_URL`
}

interface Usage {
  requests: number
  bytes: number
}

const MAX_TRACKED_SESSIONS = 100_000
/** Tokens remembered as verified (with their fingerprints); the oldest is forgotten first. */
const MAX_VERIFIED_TOKENS = 10_000

/** `text` with every occurrence of `secret` replaced by `[key]`. */
const maskSecret = (text: string, secret: string): string =>
  secret.length > 0 && text.includes(secret) ? text.split(secret).join("[key]") : text

const tierOf = (s: SessionView) => s.tier

export const make: Effect.Effect<
  ProxyShape,
  never,
  Sessions | Secrets | CurrentCatalog | AuditLog.AuditLog | SystemKeys.SystemKeys | ProxyConfig
> = Effect.gen(function* () {
  const sessions = yield* Sessions
  const secrets = yield* Secrets
  const catalog = yield* CurrentCatalog
  const audit = yield* AuditLog.AuditLog
  const config = yield* ProxyConfig
  const key = Redacted.value(yield* (yield* SystemKeys.SystemKeys).hmacKey(ProxyToken.PURPOSE))

  let boundUrl = "http://127.0.0.1:8787"
  const publicUrl = () => config.publicUrl ?? boundUrl

  const usage = new Map<string, Usage>()
  const usageOf = (session: string): Usage => {
    let u = usage.get(session)
    if (u === undefined) {
      if (usage.size >= MAX_TRACKED_SESSIONS) {
        const oldest = usage.keys().next()
        if (!oldest.done) usage.delete(oldest.value)
      }
      u = { requests: 0, bytes: 0 }
      usage.set(session, u)
    }
    return u
  }

  // Tokens that verified, by the SHA-256 of their value (the raw token is never kept): their
  // session and fingerprint. A token's validity is a pure function of the key, the session and
  // the nonce, so a hit saves the HMAC and can never be stale: revocation and expiry are the
  // session's state, still read on every request. Only tokens that verified are remembered; a
  // miss costs the HMAC as before. The key is the whole digest, not the 48-bit fingerprint: a
  // forged token sharing a remembered token's fingerprint must not pass.
  const verified = new Map<string, { readonly session: string; readonly fingerprint: string }>()
  const verifiedToken = (session: string, token: string): string | undefined => {
    const digest = ProxyToken.digest(token)
    const hit = verified.get(digest)
    if (hit !== undefined) return hit.session === session ? hit.fingerprint : undefined
    if (!ProxyToken.verify(key, session, token)) return undefined
    if (verified.size >= MAX_VERIFIED_TOKENS) {
      const oldest = verified.keys().next()
      if (!oldest.done) verified.delete(oldest.value)
    }
    const fingerprint = ProxyToken.fingerprintOfDigest(digest)
    verified.set(digest, { session, fingerprint })
    return fingerprint
  }

  // Fail closed on the audit: a `proxy.request` append that failed stops the proxy until an
  // append succeeds again (the next request tries one first, recording how many were lost).
  let lostRecords = 0

  const unauthorized = new Unauthorized({
    message: "missing or invalid proxy token for this session (send the token from delivery)"
  })

  const auditRefusal = (session: SessionView, method: string, path: string, reason: string) =>
    audit.append({
      actor: { type: "agent", id: session.agent },
      action: "proxy.request",
      outcome: "denied",
      capability: session.capability,
      session: session.id,
      wallet: session.wallet,
      tier: tierOf(session),
      reason,
      details: { method: method.slice(0, 16), path: path.slice(0, 512) }
    })

  const recoverAudit = Effect.suspend(() =>
    lostRecords === 0
      ? Effect.void
      : audit
          .append({
            actor: { type: "system", id: "proxy" },
            action: "proxy.request",
            outcome: "error",
            reason: "audit-was-unavailable",
            details: { lostRecords }
          })
          .pipe(
            Effect.tap(() =>
              Effect.sync(() => {
                lostRecords = 0
              })
            )
          )
  )

  /** The session's budget error when it has no request or no byte left, else undefined. */
  const overBudget = (used: Usage): ProxyBudgetExceeded | undefined =>
    used.requests >= config.maxRequestsPerSession
      ? new ProxyBudgetExceeded({
          message: `the session used its ${config.maxRequestsPerSession} proxied requests`,
          limit: "requests",
          used: used.requests,
          budget: config.maxRequestsPerSession
        })
      : used.bytes >= config.maxBytesPerSession
        ? new ProxyBudgetExceeded({
            message: `the session moved its ${config.maxBytesPerSession} bytes`,
            limit: "bytes",
            used: used.bytes,
            budget: config.maxBytesPerSession
          })
        : undefined

  const budgetOf = (used: Usage): Budget => ({
    addBytes: (n) => {
      if (used.bytes + n > config.maxBytesPerSession) {
        // Over: the session is spent (the next request is refused before any upstream byte).
        used.bytes = config.maxBytesPerSession
        return false
      }
      used.bytes += n
      return true
    },
    usedBytes: () => used.bytes,
    maxBytes: config.maxBytesPerSession
  })

  const tunnelBudget = (session: SessionView): Effect.Effect<Budget, ProxyBudgetExceeded> =>
    Effect.suspend(() => {
      const used = usageOf(session.id)
      const spent = overBudget(used)
      if (spent !== undefined) return Effect.fail(spent)
      used.requests++
      return Effect.succeed(budgetOf(used))
    })

  const open = (request: ProxyRequest): Effect.Effect<Grant, OpenError> =>
    Effect.gen(function* () {
      // 1. The token, before any read: a forged or foreign token costs one HMAC.
      const token = ProxyPolicy.presentedToken(request.headers)
      const tokenFingerprint = token === undefined ? undefined : verifiedToken(request.session, token)
      if (tokenFingerprint === undefined) return yield* unauthorized
      yield* recoverAudit
      // 2. The session, as it is now.
      const session = yield* sessions
        .get(request.session)
        .pipe(Effect.catchTag("SessionMissing", () => Effect.fail(unauthorized)))
      const refuse = <E extends OpenError>(error: E, reason: string) =>
        auditRefusal(session, request.method, request.path, reason).pipe(Effect.zipRight(Effect.fail(error)))
      const now = yield* Clock.currentTimeMillis
      if (
        session.status === "expired" ||
        (session.status === "active" && now >= DateTime.toEpochMillis(session.expiresAt))
      ) {
        usage.delete(session.id)
        return yield* refuse(
          new Expired({ message: "the session has expired", session: session.id }),
          "expired"
        )
      }
      if (session.status !== "active") {
        usage.delete(session.id)
        return yield* refuse(
          new SessionNotActive({
            message: `the session is ${session.status}, not active`,
            session: session.id,
            status: session.status
          }),
          `not-active:${session.status}`
        )
      }
      // 3. The catalog in force now.
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
      const proxy = backing.proxy
      // 4. Path and method.
      const decision =
        request.upstreamPath === true
          ? ProxyPolicy.decideUpstream(proxy, request.method, request.path)
          : ProxyPolicy.decide(proxy, request.method, request.path)
      if (Either.isLeft(decision)) {
        const refusal = decision.left
        switch (refusal._tag) {
          case "BadPath":
            return yield* refuse(
              new InvalidProxyPath({ message: ProxyPolicy.describePathProblem(refusal.problem) }),
              `bad-path:${refusal.problem}`
            )
          case "MethodNotAllowed":
            return yield* refuse(
              new MethodNotAllowed({
                message: `method ${refusal.method.slice(0, 16)} is not allowed for this capability (allowed: ${proxy.methods.join(", ")})`,
                method: refusal.method.slice(0, 16)
              }),
              "method-not-allowed"
            )
          case "PathNotAllowed":
            return yield* refuse(
              new PathNotAllowed({
                message: "the path is not in this capability's allow-list",
                path: refusal.path.slice(0, 512)
              }),
              "path-not-allowed"
            )
        }
      }
      const target = decision.right
      // 5. Budgets (per session, per broker instance).
      const used = usageOf(session.id)
      const spent = overBudget(used)
      if (spent !== undefined) return yield* refuse(spent, `budget:${spent.limit}`)
      // The request slot is taken now, before the vault read yields: concurrent requests of one
      // session cannot all pass the check above. A request the vault refuses gives it back.
      used.requests++
      // 6. The key, last: a refused request never touches the vault.
      const secret = yield* secrets.get(session.wallet, backing.secret).pipe(
        Effect.catchAll((e) =>
          Effect.sync(() => {
            used.requests--
          }).pipe(
            Effect.zipRight(
              refuse(
                new CredentialUnavailable(
                  e._tag === "SecretMissing"
                    ? {
                        message: `the capability's secret ${JSON.stringify(e.name)} is not in the session's wallet; an operator must store it`,
                        reason: "secret-missing"
                      }
                    : { message: "the vault is unavailable", reason: "vault-unavailable" }
                ),
                e._tag === "SecretMissing" ? "secret-missing" : "vault-unavailable"
              )
            )
          )
        )
      )
      const budget = budgetOf(used)
      return {
        session,
        capability: capability.id,
        method: request.method.toUpperCase(),
        proxy,
        target,
        credential: Redacted.make(ProxyPolicy.credentialValue(proxy, Redacted.value(secret))),
        secret,
        budget,
        tokenFingerprint
      } satisfies Grant
    })

  const finish = (grant: Grant, facts: Facts): Effect.Effect<void> =>
    audit
      .append({
        actor: { type: "agent", id: grant.session.agent },
        action: "proxy.request",
        outcome: facts.outcome,
        capability: grant.capability,
        session: grant.session.id,
        wallet: grant.session.wallet,
        tier: tierOf(grant.session),
        ...(facts.reason === undefined ? {} : { reason: facts.reason }),
        details: {
          method: grant.method,
          upstream: grant.target.upstream.host,
          // An agent that holds the key (from elsewhere) and puts it in the path must not get it
          // into the audit log: the path is recorded with the key masked.
          path: maskSecret(grant.target.decodedPath, Redacted.value(grant.secret)).slice(0, 512),
          status: facts.status,
          bytesIn: facts.bytesIn,
          bytesOut: facts.bytesOut,
          durationMs: Math.round(facts.durationMs * 1000) / 1000,
          token: grant.tokenFingerprint
        }
      })
      .pipe(
        Effect.asVoid,
        Effect.catchAll(() =>
          Effect.sync(() => {
            lostRecords++
          }).pipe(
            Effect.zipRight(
              Effect.logError(
                "proxy.request audit append failed; the proxy refuses until the audit is back"
              ).pipe(Effect.annotateLogs({ session: grant.session.id }))
            )
          )
        )
      )

  const issue = (session: SessionView, backing: Catalog.BearerToken): Effect.Effect<Issued> =>
    Effect.sync(() => {
      const proxy = backing.proxy
      const token = ProxyToken.mint(key, session.id)
      const baseUrl = Redacted.make(`${publicUrl()}/v1/proxy/${session.id}`)
      return {
        credential: {
          _tag: "proxy",
          baseUrl: Redacted.value(baseUrl),
          token,
          header: proxy === undefined ? "authorization" : ProxyPolicy.credentialHeader(proxy),
          upstream: proxy?.upstream ?? ""
        },
        env: {
          [backing.env]: token,
          [baseUrlVariable(backing.env)]: baseUrl,
          AAP_PROXY_URL: baseUrl,
          AAP_PROXY_TOKEN: token
        },
        details: {
          backing: "bearer-token",
          proxied: true,
          upstream: proxy?.upstream ?? "",
          token: ProxyToken.fingerprint(Redacted.value(token))
        },
        sensitive: token
      } satisfies Issued
    })

  const listening = (url: string) =>
    Effect.sync(() => {
      boundUrl = url.replace(/\/+$/, "")
    })

  return EgressProxy.of({ issue, open, finish, listening, tunnelBudget })
})

export const layer: Layer.Layer<
  EgressProxy,
  never,
  Sessions | Secrets | CurrentCatalog | AuditLog.AuditLog | SystemKeys.SystemKeys | ProxyConfig
> = Layer.effect(EgressProxy, make)
