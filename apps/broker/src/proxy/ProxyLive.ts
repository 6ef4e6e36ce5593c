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
 *
 * @since 0.1.0
 */
import * as Fs from "node:fs"
import type * as Http from "node:http"
import {
  type CurrentCatalog,
  type DeliveryPorts,
  EgressProxy,
  type SessionRepository
} from "@aap/agent-coordination"
import type { AuditLog } from "@aap/audit"
import type { SystemKeys } from "@aap/key-custody"
import { Config, ConfigError, Effect, Either, Layer, Option } from "effect"
import { layerDeliverySessions } from "../internal/delivery.js"
import type { SessionCache } from "../internal/sessionCache.js"
import * as ProxyServer from "./ProxyServer.js"

export interface ProxySettings {
  readonly publicUrl: Option.Option<string>
  readonly maxRequestsPerSession: number
  readonly maxBytesPerSession: number
  /** The CA file's PEM content, read at start. */
  readonly upstreamCa: Option.Option<string>
  readonly responseHeadersTimeoutMs: number
  readonly idleTimeoutMs: number
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
  idleTimeoutMs: positive("AAP_PROXY_IDLE_TIMEOUT_MS", 300_000)
})

/** `EgressProxy` over the broker's cached ports, configured from `settings`. */
export const layerEgressProxy: Layer.Layer<
  EgressProxy.EgressProxy,
  ConfigError.ConfigError,
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
      Effect.map(settings, (s) =>
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
 * Mounts the streaming edge on the broker's node server. The settings were validated when
 * `layerEgressProxy` was built, so reading them again cannot fail short of the CA file
 * disappearing in between (a defect).
 */
export const layerMount = (server: Http.Server): Layer.Layer<never, never, EgressProxy.EgressProxy> =>
  Layer.unwrapEffect(
    Effect.map(Effect.orDie(settings), (s) =>
      ProxyServer.layerMount(server, {
        upstreamCa: Option.getOrUndefined(s.upstreamCa),
        responseHeadersTimeoutMs: s.responseHeadersTimeoutMs,
        idleTimeoutMs: s.idleTimeoutMs
      })
    )
  )

/**
 * `layerMount` when the services provide `EgressProxy` (the embedded and production services
 * do), nothing otherwise (test doubles of the HTTP layer that have no proxy).
 */
export const layerMountIfProvided = (server: Http.Server): Layer.Layer<never> =>
  Layer.unwrapEffect(
    Effect.map(
      Effect.serviceOption(EgressProxy.EgressProxy),
      Option.match({
        onNone: () => Layer.empty,
        onSome: (proxy) =>
          layerMount(server).pipe(Layer.provide(Layer.succeed(EgressProxy.EgressProxy, proxy)))
      })
    )
  )
