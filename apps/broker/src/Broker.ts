/**
 * The broker process: composes the contexts' layers, the HttpApi handlers and the HTTP server.
 * `layer(config)` is what `aap serve` and `main.ts` run.
 *
 * @since 0.1.0
 */
import * as Http from "node:http"
import { HttpApiBuilder, HttpApiSwagger, HttpServer, type HttpServerError } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Effect, Layer } from "effect"
import { Api } from "./Api.js"
import type { BrokerConfigShape } from "./BrokerConfig.js"
import * as BrokerConfig from "./BrokerConfig.js"
import { SystemLive } from "./http/System.js"
import { apiMiddlewareLayer, serveLayer } from "./internal/httpStack.js"
import { type BrokerMetrics, layerMetrics, loggerLayer } from "./internal/observability.js"
import * as Readiness from "./Readiness.js"

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
 * The HTTP part: handlers, docs, middlewares and the server on `config.listen`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerHttp = (
  config: BrokerConfigShape
): Layer.Layer<BrokerInfo, HttpServerError.ServeError, Readiness.Readiness | BrokerMetrics> => {
  const server = Http.createServer({ keepAliveTimeout: 5_000, requestTimeout: 60_000 })
  const ApiLive = HttpApiBuilder.api(Api).pipe(Layer.provide(SystemLive))
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
 * The whole broker for a configuration.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (config: BrokerConfigShape): Layer.Layer<BrokerInfo, HttpServerError.ServeError> =>
  layerHttp(config).pipe(
    Layer.provide(Readiness.layer([])),
    Layer.provide(layerMetrics),
    Layer.provide(loggerLayer(config.logLevel)),
    Layer.provide(BrokerConfig.layerValue(config))
  )

/**
 * Alias of `layer`, for the CLI.
 *
 * @since 0.1.0
 */
export const makeBroker = layer
