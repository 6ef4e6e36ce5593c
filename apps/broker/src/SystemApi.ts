/**
 * The broker's own endpoints: liveness, readiness and metrics (DESIGN §10). No auth.
 *
 * @since 0.1.0
 */
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"
import { NotReady } from "./BrokerErrors.js"

/**
 * @since 0.1.0
 * @category schemas
 */
export class Health extends Schema.Class<Health>("Health")({
  status: Schema.Literal("ok"),
  version: Schema.String,
  uptimeSeconds: Schema.Number
}) {}

/**
 * @since 0.1.0
 * @category schemas
 */
export class Readiness extends Schema.Class<Readiness>("Readiness")({
  status: Schema.Literal("ready"),
  checks: Schema.Record({ key: Schema.String, value: Schema.Literal("ok", "failing") })
}) {}

/**
 * @since 0.1.0
 * @category api
 */
export class SystemApi extends HttpApiGroup.make("system", { topLevel: true })
  .add(HttpApiEndpoint.get("healthz", "/healthz").addSuccess(Health))
  .add(HttpApiEndpoint.get("readyz", "/readyz").addSuccess(Readiness).addError(NotReady))
  .add(
    HttpApiEndpoint.get("metrics", "/metrics").addSuccess(
      HttpApiSchema.Text({ contentType: "text/plain; version=0.0.4; charset=utf-8" })
    )
  ) {}
