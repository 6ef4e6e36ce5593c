/**
 * The audit HTTP contract (DESIGN §10). Only `effect` and `@effect/platform`: the broker
 * composes this group into its `HttpApi`, adds operator authentication (ADR 0050) and writes
 * the handlers over `AuditReader`; the CLI derives its client from it.
 *
 * @since 0.1.0
 */
import { HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import { Schema } from "effect"
import { AuditUnavailable } from "./AuditError.js"
import { Actor, AuditEvent, StreamId, VerifyReport } from "./AuditEvent.js"

const Seq = Schema.NumberFromString.pipe(Schema.int(), Schema.nonNegative())

/**
 * Query string of `GET /v1/audit`. With `stream`: the events of that stream after seq
 * `after` (tail). Without: events of every stream, ordered by time. Other filters narrow
 * either form. `limit` defaults to 100, at most 10000.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ListParams = Schema.Struct({
  stream: Schema.optional(StreamId),
  after: Schema.optional(Seq),
  limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 10_000))),
  from: Schema.optional(Schema.String),
  to: Schema.optional(Schema.String),
  session: Schema.optional(Schema.String),
  actor: Schema.optional(Schema.String),
  actorType: Schema.optional(Actor.fields.type),
  action: Schema.optional(Schema.String),
  wallet: Schema.optional(Schema.String),
  hmac: Schema.optional(Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/)))
})

/**
 * `GET /v1/audit`: the matching events.
 *
 * @since 0.1.0
 * @category schemas
 */
export class AuditPage extends Schema.Class<AuditPage>("AuditPage")({
  events: Schema.Array(AuditEvent)
}) {}

/**
 * The `audit` group: `GET /v1/audit` and `GET /v1/audit/verify`, both for operators. The
 * broker adds `OperatorAuth` when composing.
 *
 * @since 0.1.0
 * @category api
 */
export class AuditApi extends HttpApiGroup.make("audit")
  .add(
    HttpApiEndpoint.get("list", "/v1/audit")
      .setUrlParams(ListParams)
      .addSuccess(AuditPage)
      .addError(AuditUnavailable)
  )
  .add(
    HttpApiEndpoint.get("verify", "/v1/audit/verify").addSuccess(VerifyReport).addError(AuditUnavailable)
  ) {}
