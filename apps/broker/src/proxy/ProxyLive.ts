/**
 * The egress proxy in the broker (issue 12, ADR 0080): configuration from the environment,
 * the `EgressProxy` decisions over the broker's cached session and secret ports (ADR 0051),
 * and the streaming edge mounted on the broker's node server.
 *
 * | variable | meaning | default |
 * |---|---|---|
 * | `AAP_PROXY_PUBLIC_URL` | base URL agents reach the broker at, used in delivered proxy URLs | the bound address |
 * | `AAP_PROXY_MAX_REQUESTS` | proxied requests per session (per instance) | 10000 |
 * | `AAP_PROXY_MAX_BYTES` | body bytes per session, both directions (per instance) | 1073741824 |
 * | `AAP_PROXY_UPSTREAM_CA_FILE` | PEM file of extra CAs trusted for upstreams | none (system roots) |
 * | `AAP_PROXY_RESPONSE_TIMEOUT_MS` | time allowed to the upstream's response headers | 60000 |
 * | `AAP_PROXY_IDLE_TIMEOUT_MS` | a proxied stream idle this long is closed | 300000 |
 * | `AAP_PROXY_CA_CERT`, `AAP_PROXY_CA_KEY` | operator CA (PEM files, key mode 0600) for TLS interception in the forward mode (ADR 0082) | none: interception off |
 * | `AAP_PROXY_TUNNEL_CHECK_MS` | how often an open CONNECT tunnel's session is re-checked | 1000 |
 *
 * The forward mode (`HTTPS_PROXY`, CONNECT on the broker's listener, ADR 0081) is mounted with
 * the reverse proxy whenever the services provide `ForwardProxy`.
 *
 * @since 0.1.0
 */
import * as Fs from "node:fs"
import type * as Http from "node:http"
import {
  type CurrentCatalog,
  type DeliveryPorts,
  EgressProxy,
  ForwardProxy,
  type SessionRepository
} from "@aap/agent-coordination"
import type { AuditLog } from "@aap/audit"
import type { SystemKeys } from "@aap/key-custody"
import { Config, ConfigError, Context, Effect, Either, Layer, Option } from "effect"
import { layerDeliverySessions } from "../internal/delivery.js"
import type { SessionCache } from "../internal/sessionCache.js"
import * as ForwardServer from "./ForwardServer.js"
import * as Interception from "./Interception.js"
import * as ProxyServer from "./ProxyServer.js"

export interface ProxySettings {
  readonly publicUrl: Option.Option<string>
  readonly maxRequestsPerSession: number
  readonly maxBytesPerSession: number
  /** The CA file's PEM content, read at start. */
  readonly upstreamCa: Option.Option<string>
  readonly responseHeadersTimeoutMs: number
  readonly idleTimeoutMs: number
  /** The operator CA for TLS interception (forward mode); `None`: interception off. */
  readonly operatorCa: Option.Option<Interception.OperatorCa>
  readonly tunnelCheckMs: number
}

const invalid = (message: string) => ConfigError.InvalidData([], message)

const positive = (name: string, fallback: number) =>
  Config.string(name).pipe(
    Config.mapOrFail((raw) => {
      const n = Number(raw)
      return Number.isSafeInteger(n) && n > 0
        ? Either.right(n)
        : Either.left(invalid(`expected a positive whole number, got ${JSON.stringify(raw)}`))
    }),
    Config.withDefault(fallback)
  )

/** The `AAP_PROXY_*` settings; every bad value is named. */
export const settings: Config.Config<ProxySettings> = Config.all({
  publicUrl: Config.option(
    Config.string("AAP_PROXY_PUBLIC_URL").pipe(
      Config.mapOrFail((raw) => {
        try {
          const u = new URL(raw)
          if ((u.protocol === "http:" || u.protocol === "https:") && u.search === "" && u.hash === "") {
            return Either.right(raw.replace(/\/+$/, ""))
          }
        } catch {
          // fall through
        }
        return Either.left(
          invalid(
            `expected an http(s) URL without query, such as https://aap.example.org, got ${JSON.stringify(raw)}`
          )
        )
      })
    )
  ),
  maxRequestsPerSession: positive("AAP_PROXY_MAX_REQUESTS", 10_000),
  maxBytesPerSession: positive("AAP_PROXY_MAX_BYTES", 1024 * 1024 * 1024),
  upstreamCa: Config.option(
    Config.string("AAP_PROXY_UPSTREAM_CA_FILE").pipe(
      Config.mapOrFail((file) => {
        try {
          const pem = Fs.readFileSync(file, "utf8")
          return pem.includes("-----BEGIN CERTIFICATE-----")
            ? Either.right(pem)
            : Either.left(invalid(`${file} holds no PEM certificate`))
        } catch (e) {
          return Either.left(invalid(`cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`))
        }
      })
    )
  ),
  responseHeadersTimeoutMs: positive("AAP_PROXY_RESPONSE_TIMEOUT_MS", 60_000),
  idleTimeoutMs: positive("AAP_PROXY_IDLE_TIMEOUT_MS", 300_000),
  operatorCa: Interception.config,
  tunnelCheckMs: positive("AAP_PROXY_TUNNEL_CHECK_MS", 1_000)
})

/**
 * The settings as read once at start (files included): every proxy layer and both mounts take
 * them from here, so the CA files are read and parsed once and all parts agree on them.
 */
export class LoadedSettings extends Context.Tag("@aap/broker/ProxySettings")<
  LoadedSettings,
  ProxySettings
>() {}

/** Reads `settings` once. */
export const layerSettings: Layer.Layer<LoadedSettings, ConfigError.ConfigError> = Layer.effect(
  LoadedSettings,
  settings
)

/** `EgressProxy` over the broker's cached ports, configured from `LoadedSettings`. */
export const layerEgressProxy: Layer.Layer<
  EgressProxy.EgressProxy,
  never,
  | LoadedSettings
  | SessionRepository.SessionRepository
  | SessionCache
  | DeliveryPorts.Secrets
  | CurrentCatalog.CurrentCatalog
  | AuditLog.AuditLog
  | SystemKeys.SystemKeys
> = EgressProxy.layer.pipe(
  Layer.provide(layerDeliverySessions),
  Layer.provide(
    Layer.unwrapEffect(
      Effect.map(LoadedSettings, (s) =>
        EgressProxy.layerConfig({
          publicUrl: Option.getOrUndefined(s.publicUrl),
          maxRequestsPerSession: s.maxRequestsPerSession,
          maxBytesPerSession: s.maxBytesPerSession
        })
      )
    )
  )
)

/**
 * `ForwardProxy` (the CONNECT decisions, ADR 0081) over the same cached session port;
 * interception is on when `AAP_PROXY_CA_CERT` / `AAP_PROXY_CA_KEY` are set and valid.
 */
export const layerForwardProxy: Layer.Layer<
  ForwardProxy.ForwardProxy,
  never,
  | LoadedSettings
  | EgressProxy.EgressProxy
  | SessionRepository.SessionRepository
  | SessionCache
  | CurrentCatalog.CurrentCatalog
  | AuditLog.AuditLog
  | SystemKeys.SystemKeys
> = ForwardProxy.layer.pipe(
  Layer.provide(layerDeliverySessions),
  Layer.provide(
    Layer.unwrapEffect(
      Effect.map(LoadedSettings, (s) => ForwardProxy.layerConfig({ intercept: Option.isSome(s.operatorCa) }))
    )
  )
)

/** Mounts the streaming edge on the broker's node server. */
export const layerMount = (
  server: Http.Server,
  s: ProxySettings
): Layer.Layer<never, never, EgressProxy.EgressProxy> =>
  ProxyServer.layerMount(server, {
    upstreamCa: Option.getOrUndefined(s.upstreamCa),
    responseHeadersTimeoutMs: s.responseHeadersTimeoutMs,
    idleTimeoutMs: s.idleTimeoutMs
  })

/**
 * Mounts the forward mode (CONNECT, the CA route) on the broker's node server; with an operator
 * CA it mints leaf certificates for intercepted upstreams (ADR 0082).
 */
export const layerMountForward = (
  server: Http.Server,
  s: ProxySettings
): Layer.Layer<never, never, EgressProxy.EgressProxy | ForwardProxy.ForwardProxy> =>
  Layer.unwrapEffect(
    Effect.gen(function* () {
      const interception = yield* Option.match(s.operatorCa, {
        onNone: () => Effect.succeed(undefined),
        onSome: (ca) =>
          Effect.map(Effect.orDie(Effect.tryPromise(() => Interception.makeMinter(ca))), (minter) => ({
            minter,
            caCertPem: ca.certPem
          }))
      })
      return ForwardServer.layerMount(server, {
        upstreamCa: Option.getOrUndefined(s.upstreamCa),
        responseHeadersTimeoutMs: s.responseHeadersTimeoutMs,
        idleTimeoutMs: s.idleTimeoutMs,
        tunnelCheckMs: s.tunnelCheckMs,
        interception
      })
    })
  )

/**
 * `layerMount` when the services provide `EgressProxy` (the embedded and production services
 * do), nothing otherwise (test doubles of the HTTP layer that have no proxy). The settings are
 * the services' `LoadedSettings`; services without them (test doubles) have them read here.
 */
export const layerMountIfProvided = (server: Http.Server): Layer.Layer<never> =>
  Layer.unwrapEffect(
    Effect.map(
      Effect.serviceOption(EgressProxy.EgressProxy),
      Option.match({
        onNone: () => Layer.empty,
        onSome: (proxy) =>
          Layer.unwrapEffect(
            Effect.gen(function* () {
              const forward = yield* Effect.serviceOption(ForwardProxy.ForwardProxy)
              const loaded = yield* Effect.serviceOption(LoadedSettings)
              const s = Option.isSome(loaded) ? loaded.value : yield* Effect.orDie(settings)
              const reverse = layerMount(server, s)
              // Mounted after the reverse proxy and closed before it (each wraps `server.emit`).
              const both = Option.match(forward, {
                onNone: () => reverse,
                onSome: (f) =>
                  layerMountForward(server, s).pipe(
                    Layer.provide(reverse),
                    Layer.provide(Layer.succeed(ForwardProxy.ForwardProxy, f))
                  )
              })
              return both.pipe(Layer.provide(Layer.succeed(EgressProxy.EgressProxy, proxy)))
            })
          )
      })
    )
  )
