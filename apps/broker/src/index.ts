/**
 * `@aap/broker`: the HTTP service composing the contexts (DESIGN §10).
 *
 * - `Api`: the composed `HttpApi`; `HttpApiClient.make(Api, { baseUrl })` gives a typed client.
 * - `Broker.layer(config)` / `Broker.makeBroker(config)` / `Broker.run(config)`: the process.
 * - `BrokerConfig.load`: configuration from the environment, validated.
 *
 * @since 0.1.0
 */
export { Api } from "./Api.js"
export * as Auth from "./Auth.js"
export * as Broker from "./Broker.js"
export * as BrokerConfig from "./BrokerConfig.js"
export * as BrokerErrors from "./BrokerErrors.js"
export * as CatalogHolder from "./CatalogHolder.js"
export { FORWARD_PROXY_CA_PATH } from "./ProxyPaths.js"
export * as Readiness from "./Readiness.js"
export * as SystemApi from "./SystemApi.js"
