/**
 * Handlers of the catalog group: `GET /v1/catalog` (agent), `POST /v1/catalog/reload` (operator).
 */
import { Api as CatalogApi } from "@aap/catalog"
import { HttpApiBuilder, type HttpApiGroup } from "@effect/platform"
import { Effect, type Layer } from "effect"
import { Api } from "../Api.js"
import { type PrincipalAuth, requireAgent, requireOperator } from "../Auth.js"
import { CatalogHolder } from "../CatalogHolder.js"

export const CatalogLive: Layer.Layer<
  HttpApiGroup.ApiGroup<"aap", "catalog">,
  never,
  CatalogHolder | PrincipalAuth
> = HttpApiBuilder.group(Api, "catalog", (handlers) =>
  Effect.gen(function* () {
    const holder = yield* CatalogHolder
    return handlers
      .handle("list", () =>
        Effect.gen(function* () {
          const agent = yield* requireAgent
          return yield* CatalogApi.view(yield* holder.current, agent.id)
        })
      )
      .handle("reload", () =>
        Effect.gen(function* () {
          yield* requireOperator
          const catalog = yield* holder.reload
          yield* Effect.logInfo("catalog reloaded", { file: holder.file })
          return new CatalogApi.CatalogReloaded({
            file: holder.file,
            agents: catalog.agents.length,
            operators: catalog.operators.length,
            capabilities: catalog.capabilities.length
          })
        })
      )
  })
)
