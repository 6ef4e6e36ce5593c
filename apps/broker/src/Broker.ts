/**
 * The broker process: composes the contexts' layers, the HttpApi handlers and the HTTP server.
 * `layer(config)` is what `aap serve` and `main.ts` run.
 *
 * @since 0.1.0
 */

import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Path from "node:path"
import type { Delivery, OidcIssuer, Sessions } from "@aap/agent-coordination"
import { Identities } from "@aap/agent-coordination"
import type { AuditReader } from "@aap/audit"
import type { SecretStore } from "@aap/vault"
import { HttpApiBuilder, HttpApiSwagger, HttpServer, type HttpServerError } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Data, Effect, Layer, Option, Redacted } from "effect"
import { Api } from "./Api.js"
import * as Auth from "./Auth.js"
import type { BrokerConfigShape } from "./BrokerConfig.js"
import * as BrokerConfig from "./BrokerConfig.js"
import * as CatalogHolder from "./CatalogHolder.js"
import { AuditLive } from "./http/Audit.js"
import { CatalogLive } from "./http/Catalog.js"
import { DeliveryLive, OidcLive } from "./http/Delivery.js"
import { SecretsLive } from "./http/Secrets.js"
import { EnrolmentLive, LinkCodesLive, SessionsLive, TokensLive } from "./http/Sessions.js"
import { SystemLive } from "./http/System.js"
import { onClientError } from "./internal/clientError.js"
import type { SecretCache } from "./internal/delivery.js"
import { apiMiddlewareLayer, serveLayer } from "./internal/httpStack.js"
import { type BrokerMetrics, layerMetrics, loggerLayer, stdoutSink } from "./internal/observability.js"
import * as Services from "./internal/services.js"
import type { SessionCache } from "./internal/sessionCache.js"
import * as ProxyLive from "./proxy/ProxyLive.js"
import type * as Readiness from "./Readiness.js"

/**
 * Facts about a running broker.
 *
 * @since 0.1.0
 * @category models
 */
export interface BrokerInfoShape {
  /** Base URL, e.g. `http://127.0.0.1:8787`. */
  readonly url: string
  readonly port: number
  readonly config: BrokerConfigShape
}

/**
 * @since 0.1.0
 * @category tags
 */
export class BrokerInfo extends Context.Tag("@aap/broker/BrokerInfo")<BrokerInfo, BrokerInfoShape>() {}

/**
 * What the HTTP layer needs from the contexts (the embedded or production services, or test
 * doubles).
 *
 * @since 0.1.0
 * @category models
 */
export type HttpServices =
  | Readiness.Readiness
  | BrokerMetrics
  | Auth.Authenticator
  | CatalogHolder.CatalogHolder
  | AuditReader.AuditReader
  | Sessions.Sessions
  | Identities.Identities
  | SessionCache
  | Delivery.Delivery
  | OidcIssuer.OidcIssuer
  | SecretStore.SecretStore
  | SecretCache

/**
 * The HTTP part: handlers, docs, middlewares and the server on `config.listen`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerHttp = (
  config: BrokerConfigShape,
  options: { readonly logSink?: ((line: string) => void) | undefined } = {}
): Layer.Layer<BrokerInfo, HttpServerError.ServeError, HttpServices> => {
  const server = Http.createServer({ keepAliveTimeout: 5_000, requestTimeout: 60_000 })
  server.on("clientError", onClientError)
  const ApiLive = HttpApiBuilder.api(Api).pipe(
    Layer.provide([
      SystemLive,
      CatalogLive,
      AuditLive,
      SessionsLive,
      LinkCodesLive,
      TokensLive,
      EnrolmentLive,
      DeliveryLive,
      OidcLive,
      SecretsLive
    ]),
    Layer.provide(Auth.layer)
  )
  const serve = serveLayer({
    server,
    maxBodyBytes: config.maxBodyBytes,
    grace: config.shutdownGrace,
    accessLog:
      config.logLevel === "debug" || config.logLevel === "info" ? (options.logSink ?? stdoutSink) : undefined
  })
  const info = Layer.effect(
    BrokerInfo,
    Effect.map(HttpServer.HttpServer, (s) => {
      const port = s.address._tag === "TcpAddress" ? s.address.port : config.listen.port
      const host = config.listen.host.includes(":") ? `[${config.listen.host}]` : config.listen.host
      return { url: `http://${host}:${port}`, port, config }
    })
  )
  // `/v1/proxy/...` is served by the proxy's streaming handler ahead of the HttpApi (ADR 0080).
  return Layer.mergeAll(serve, info, ProxyLive.layerMountIfProvided(server)).pipe(
    Layer.provide(HttpApiSwagger.layer({ path: "/docs" })),
    Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })),
    Layer.provide(apiMiddlewareLayer({ requestTimeout: config.requestTimeout })),
    Layer.provide(ApiLive),
    Layer.provide([HttpApiBuilder.Router.Live, HttpApiBuilder.Middleware.layer]),
    Layer.provide(NodeHttpServer.layer(() => server, { host: config.listen.host, port: config.listen.port }))
  )
}

/**
 * The broker could not start: a bad catalog, an unreadable keyring, an unreachable store...
 * `message` says which and what to do.
 *
 * @since 0.1.0
 * @category errors
 */
export class BrokerStartError extends Data.TaggedError("BrokerStartError")<{ readonly message: string }> {}

/**
 * The broker over the given services (embedded, production or test doubles).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWith = <E>(
  config: BrokerConfigShape,
  services: Layer.Layer<Exclude<HttpServices, BrokerMetrics>, E, BrokerMetrics>
): Layer.Layer<BrokerInfo | BrokerMetrics, E | HttpServerError.ServeError> =>
  layerHttp(config).pipe(
    Layer.provide(services),
    Layer.provideMerge(layerMetrics),
    Layer.provide(loggerLayer(config.logLevel)),
    Layer.provide(Layer.setTracerEnabled(false)),
    Layer.provide(BrokerConfig.layerValue(config))
  )

/**
 * Where the first operator token was written, if this start created it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Bootstrap {
  readonly operator: string
  readonly tokenFile: string
  /** True on the first start on this `AAP_HOME` (the file was just written). */
  readonly created: boolean
}

/**
 * @since 0.1.0
 * @category tags
 */
export class BrokerBootstrap extends Context.Tag("@aap/broker/BrokerBootstrap")<
  BrokerBootstrap,
  Bootstrap
>() {}

const bootstrapOperator = (config: BrokerConfigShape) =>
  Layer.effect(
    BrokerBootstrap,
    Effect.gen(function* () {
      const identities = yield* Identities.Identities
      const holder = yield* CatalogHolder.CatalogHolder
      const catalog = yield* holder.current
      const tokenFile = Path.join(config.home, "operator.token")
      const operator = catalog.operators[0]?.id
      if (operator === undefined) {
        return yield* new BrokerStartError({
          message: `the catalog ${config.catalogPath} declares no operator; add one under operators:`
        })
      }
      const minted = yield* identities
        .bootstrapOperator(operator)
        .pipe(
          Effect.mapError(
            (e) => new BrokerStartError({ message: `cannot bootstrap the operator: ${e.message}` })
          )
        )
      if (Option.isSome(minted)) {
        yield* Effect.try({
          try: () => {
            Fs.writeFileSync(tokenFile, `${Redacted.value(minted.value)}\n`, { mode: 0o600, flag: "w" })
            Fs.chmodSync(tokenFile, 0o600)
          },
          catch: (e) => new BrokerStartError({ message: `cannot write ${tokenFile}: ${String(e)}` })
        })
      }
      return { operator, tokenFile, created: Option.isSome(minted) }
    })
  )

const describeStartError = (
  config: BrokerConfigShape,
  e: { readonly _tag: string; readonly message: string; readonly cause?: unknown }
) =>
  e instanceof BrokerStartError
    ? e
    : new BrokerStartError({
        message:
          e._tag === "ServeError"
            ? `cannot listen on ${config.listen.host}:${config.listen.port}: ${e.cause instanceof Error ? e.cause.message : String(e.cause)}`
            : e.message
      })

/**
 * The whole broker for a configuration: creates `AAP_HOME`, starts the embedded engine (or
 * connects to `AAP_DYNAMODB_ENDPOINT`), opens the keyring (or KMS), bootstraps the tables,
 * loads the catalog, opens the audit log, writes the first operator token on the first start
 * only, and listens.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  config: BrokerConfigShape,
  options: Services.Options = {}
): Layer.Layer<BrokerInfo | BrokerBootstrap | BrokerMetrics, BrokerStartError> =>
  // The bootstrap runs before the server listens, so a ready broker has its operator token.
  layerHttp(config, options).pipe(
    Layer.provideMerge(bootstrapOperator(config)),
    Layer.provide(Services.layerServices(config, options)),
    Layer.provideMerge(layerMetrics),
    Layer.provide(loggerLayer(config.logLevel, options.logSink)),
    // Spans are not exported anywhere; request and trace ids are the broker's own (ADR 0052).
    Layer.provide(Layer.setTracerEnabled(false)),
    Layer.provide(Layer.effectDiscard(Services.ensureHome(config.home))),
    Layer.mapError((e) => describeStartError(config, e))
  )

/**
 * Options of `layer` and `run`: replaceable STS clients (tests), the log sink, and background
 * work run in-process over the broker's services (`aap serve` runs the worker's jobs there).
 *
 * @since 0.1.0
 * @category models
 */
export type Options = Services.Options

/**
 * What background work may use (see `Options.background`).
 *
 * @since 0.1.0
 * @category models
 */
export type BackgroundServices = Services.BackgroundServices

/**
 * Alias of `layer`, for the CLI (`aap serve`).
 *
 * @since 0.1.0
 */
export const makeBroker = layer

/**
 * What to print once the broker listens.
 *
 * @since 0.1.0
 */
export const banner = (info: BrokerInfoShape, boot: Bootstrap): string =>
  [
    `aap broker listening on ${info.url}`,
    `  home:     ${Path.resolve(info.config.home)}`,
    `  catalog:  ${info.config.catalogPath}`,
    `  store:    ${Option.match(info.config.dynamodbEndpoint, { onNone: () => "embedded (dynalite, data in <home>/data)", onSome: (e) => e })}`,
    `  keys:     ${Option.match(info.config.kmsKeyId, { onNone: () => "local keyring (<home>/keys/keyring.json)", onSome: (k) => `AWS KMS ${k}` })}`,
    boot.created
      ? `  operator token for ${boot.operator} written to ${boot.tokenFile} (0600) - first start only, keep it safe`
      : `  operator token: written on the first start to ${boot.tokenFile}`,
    "",
    "Try next:",
    `  curl ${info.url}/healthz`,
    `  export AAP_URL=${info.url} AAP_TOKEN=$(cat ${boot.tokenFile})`,
    `  curl -X POST -H "authorization: Bearer $AAP_TOKEN" ${info.url}/v1/agents/codex/link-codes`,
    `  open ${info.url}/docs for the API`,
    ""
  ].join("\n")

/**
 * Run the broker until interrupted (SIGINT/SIGTERM under `NodeRuntime.runMain`), printing the
 * banner to stderr once it listens. On interruption it drains in-flight requests and flushes
 * the audit log before returning.
 *
 * @since 0.1.0
 */
export const run = (
  config: BrokerConfigShape,
  options: Services.Options = {}
): Effect.Effect<never, BrokerStartError> =>
  Effect.scoped(
    Effect.gen(function* () {
      const context = yield* Layer.build(layer(config, options))
      const info = Context.get(context, BrokerInfo)
      const boot = Context.get(context, BrokerBootstrap)
      process.stderr.write(banner(info, boot))
      return yield* Effect.never
    })
  )
