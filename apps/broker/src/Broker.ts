/**
 * The broker process: composes the contexts' layers, the HttpApi handlers and the HTTP server.
 * `layer(config)` is what `aap serve` and `main.ts` run.
 *
 * @since 0.1.0
 */
import * as Http from "node:http"
import type { AuditReader } from "@aap/audit"
import { HttpApiBuilder, HttpApiSwagger, HttpServer, type HttpServerError } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Data, Effect, Layer } from "effect"
import { Api } from "./Api.js"
import * as Auth from "./Auth.js"
import type { BrokerConfigShape } from "./BrokerConfig.js"
import * as BrokerConfig from "./BrokerConfig.js"
import type * as CatalogHolder from "./CatalogHolder.js"
import { AuditLive } from "./http/Audit.js"
import { CatalogLive } from "./http/Catalog.js"
import { SystemLive } from "./http/System.js"
import { apiMiddlewareLayer, serveLayer } from "./internal/httpStack.js"
import { type BrokerMetrics, layerMetrics, loggerLayer } from "./internal/observability.js"
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

/**
 * The HTTP part: handlers, docs, middlewares and the server on `config.listen`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerHttp = (
  config: BrokerConfigShape
): Layer.Layer<BrokerInfo, HttpServerError.ServeError, HttpServices> => {
  const server = Http.createServer({ keepAliveTimeout: 5_000, requestTimeout: 60_000 })
  const ApiLive = HttpApiBuilder.api(Api).pipe(
    Layer.provide([SystemLive, CatalogLive, AuditLive]),
    Layer.provide(Auth.layer)
  )
  const serve = serveLayer({
    server,
    maxBodyBytes: config.maxBodyBytes,
    grace: config.shutdownGrace,
    accessLog: config.logLevel === "debug" || config.logLevel === "info"
  })
  const info = Layer.effect(
    BrokerInfo,
    Effect.map(HttpServer.HttpServer, (s) => {
      const port = s.address._tag === "TcpAddress" ? s.address.port : config.listen.port
      const host = config.listen.host.includes(":") ? `[${config.listen.host}]` : config.listen.host
      return { url: `http://${host}:${port}`, port, config }
    })
  )
  return Layer.mergeAll(serve, info).pipe(
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
    Layer.provide(BrokerConfig.layerValue(config))
  )
