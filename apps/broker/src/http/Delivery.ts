/**
 * `POST /v1/sessions/{id}/credentials` (owner agent) and the OIDC documents.
 */
import { Delivery, OidcIssuer } from "@aap/agent-coordination"
import { HttpApiBuilder, type HttpApiGroup } from "@effect/platform"
import { Effect, type Layer } from "effect"
import { Api } from "../Api.js"
import { type AgentAuth, requireAgent } from "../Auth.js"
import { BrokerMetrics } from "../internal/observability.js"
import { IssuerUnavailable } from "../OidcApi.js"

export const DeliveryLive: Layer.Layer<
  HttpApiGroup.ApiGroup<"aap", "delivery">,
  never,
  Delivery.Delivery | AgentAuth | BrokerMetrics
> = HttpApiBuilder.group(Api, "delivery", (handlers) =>
  Effect.gen(function* () {
    const delivery = yield* Delivery.Delivery
    const metrics = yield* BrokerMetrics
    return handlers.handle("deliver", ({ path, payload }) =>
      Effect.flatMap(requireAgent, (agent) =>
        delivery.deliver(agent, path.id, payload).pipe(
          Effect.tapBoth({
            onSuccess: (d) =>
              Effect.sync(() => metrics.deliveries.inc({ backing: d.credential._tag, outcome: "success" })),
            onFailure: (e) =>
              Effect.sync(() => metrics.deliveries.inc({ backing: "unknown", outcome: e._tag }))
          })
        )
      )
    )
  })
)

export const OidcLive: Layer.Layer<
  HttpApiGroup.ApiGroup<"aap", "oidc">,
  never,
  OidcIssuer.OidcIssuer
> = HttpApiBuilder.group(Api, "oidc", (handlers) =>
  Effect.gen(function* () {
    const issuer = yield* OidcIssuer.OidcIssuer
    return handlers
      .handle("discovery", () => Effect.succeed(issuer.discovery))
      .handle("jwks", () =>
        issuer.jwks.pipe(
          Effect.map((jwks) => ({ keys: jwks.keys.map((k) => ({ ...k })) })),
          Effect.mapError(() => new IssuerUnavailable({ message: "the issuer keys are unavailable" }))
        )
      )
  })
)
