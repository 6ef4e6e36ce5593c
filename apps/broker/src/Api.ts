/**
 * The broker's HttpApi: the contexts' groups with the broker's authentication middlewares, plus
 * the broker's own endpoints. Clients derive a typed client from it:
 * `HttpApiClient.make(Api, { baseUrl })`.
 *
 * @since 0.1.0
 */
import { Api as CoordinationApi, DeliveryApi } from "@aap/agent-coordination"
import { Api as AuditApi } from "@aap/audit"
import { Api as CatalogApi } from "@aap/catalog"
import { Api as VaultApi } from "@aap/vault"
import { HttpApi, OpenApi } from "@effect/platform"
import { AgentAuth, OperatorAuth, PrincipalAuth } from "./Auth.js"
import {
  InternalError,
  PayloadTooLarge,
  RequestTimeout,
  RouteNotFound,
  ShuttingDown
} from "./BrokerErrors.js"
import { OidcApi } from "./OidcApi.js"
import { SystemApi } from "./SystemApi.js"

/**
 * @since 0.1.0
 * @category api
 */
export class Api extends HttpApi.make("aap")
  .add(SystemApi)
  .add(CatalogApi.CatalogApi.middleware(PrincipalAuth))
  .add(AuditApi.AuditApi.middleware(OperatorAuth))
  .add(CoordinationApi.SessionsApi.middleware(PrincipalAuth))
  .add(CoordinationApi.LinkCodesApi.middleware(OperatorAuth))
  .add(CoordinationApi.TokensApi.middleware(OperatorAuth))
  .add(CoordinationApi.EnrolmentApi)
  .add(DeliveryApi.DeliveryGroup.middleware(AgentAuth))
  .add(VaultApi.SecretsApi.middleware(OperatorAuth))
  .add(OidcApi)
  .addError(RouteNotFound)
  .addError(PayloadTooLarge)
  .addError(RequestTimeout)
  .addError(ShuttingDown)
  .addError(InternalError)
  .annotateContext(
    OpenApi.annotations({
      title: "aap broker",
      version: "0.1.0",
      description:
        "Agent Access Plane broker: agents request capabilities and fetch short-lived credentials; operators approve, manage secrets and read the audit log. Errors are JSON `{_tag, message}`."
    })
  ) {}
