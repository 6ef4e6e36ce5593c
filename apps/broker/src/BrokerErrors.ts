/**
 * Errors the broker itself puts on the wire (DESIGN §10). Every error body is
 * `{ "_tag": "...", "message": "..." }` and never carries secret material.
 *
 * @since 0.1.0
 */
import { Errors } from "@aap/agent-coordination"
import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

/**
 * 401 and 403 are the coordination context's errors, re-exported so one schema of each exists
 * in the OpenAPI document.
 *
 * @since 0.1.0
 * @category errors
 */
export const Unauthorized = Errors.Unauthorized
/** @since 0.1.0 */
export type Unauthorized = Errors.Unauthorized
/** @since 0.1.0 */
export const Forbidden = Errors.Forbidden
/** @since 0.1.0 */
export type Forbidden = Errors.Forbidden

/**
 * No route for this method and path.
 *
 * @since 0.1.0
 * @category errors
 */
export class RouteNotFound extends Schema.TaggedError<RouteNotFound>()(
  "RouteNotFound",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

/**
 * The request body is larger than `AAP_MAX_BODY_BYTES`.
 *
 * @since 0.1.0
 * @category errors
 */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()(
  "PayloadTooLarge",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 413 })
) {}

/**
 * The request did not finish within `AAP_REQUEST_TIMEOUT`; nothing was delivered.
 *
 * @since 0.1.0
 * @category errors
 */
export class RequestTimeout extends Schema.TaggedError<RequestTimeout>()(
  "RequestTimeout",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 503 })
) {}

/**
 * The broker is shutting down and takes no new requests.
 *
 * @since 0.1.0
 * @category errors
 */
export class ShuttingDown extends Schema.TaggedError<ShuttingDown>()(
  "ShuttingDown",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 503 })
) {}

/**
 * An unexpected failure; the body carries only the request id to look up in the logs.
 *
 * @since 0.1.0
 * @category errors
 */
export class InternalError extends Schema.TaggedError<InternalError>()(
  "InternalError",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 500 })
) {}

/**
 * A dependency (store, keys, audit) is not ready.
 *
 * @since 0.1.0
 * @category errors
 */
export class NotReady extends Schema.TaggedError<NotReady>()(
  "NotReady",
  {
    message: Schema.String,
    checks: Schema.Record({ key: Schema.String, value: Schema.Literal("ok", "failing") })
  },
  HttpApiSchema.annotations({ status: 503 })
) {}
