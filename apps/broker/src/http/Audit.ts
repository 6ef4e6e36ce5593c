/**
 * Handlers of the audit group (operators only): `GET /v1/audit`, `GET /v1/audit/verify`.
 */
import { AuditReader } from "@aap/audit"
import { HttpApiBuilder, type HttpApiGroup } from "@effect/platform"
import { Effect, type Layer } from "effect"
import { Api } from "../Api.js"
import type { OperatorAuth } from "../Auth.js"

export const AuditLive: Layer.Layer<
  HttpApiGroup.ApiGroup<"aap", "audit">,
  never,
  AuditReader.AuditReader | OperatorAuth
> = HttpApiBuilder.group(Api, "audit", (handlers) =>
  Effect.gen(function* () {
    const reader = yield* AuditReader.AuditReader
    return handlers
      .handle("list", ({ urlParams }) =>
        Effect.map(
          urlParams.stream !== undefined &&
            urlParams.from === undefined &&
            urlParams.to === undefined &&
            urlParams.session === undefined &&
            urlParams.actor === undefined &&
            urlParams.actorType === undefined &&
            urlParams.action === undefined &&
            urlParams.wallet === undefined &&
            urlParams.hmac === undefined
            ? reader.tail(urlParams.stream, { after: urlParams.after, limit: urlParams.limit })
            : reader.query(urlParams),
          (events) => ({ events })
        )
      )
      .handle("verify", () => reader.verify())
  })
)
