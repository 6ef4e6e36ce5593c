/**
 * Errors the egress proxy puts on the wire: JSON `{ _tag, message, ... }` with the status of
 * DESIGN §10. None carries a path beyond its decoded form, a header value or a secret.
 *
 * Also used (re-exported) from the delivery contract: `Expired`, `SessionNotActive`,
 * `RequestDenied`, `CredentialUnavailable`, `AuditUnavailable`, `Unauthorized`.
 *
 * @since 0.1.0
 */
import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

/** 400: the path is malformed or tries to leave the upstream's tree (`..`, `%2e%2e`, `%2f`...). */
export class InvalidProxyPath extends Schema.TaggedError<InvalidProxyPath>()(
  "InvalidProxyPath",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {}

/** 403: the upstream path is not in the capability's `proxy.paths`. */
export class PathNotAllowed extends Schema.TaggedError<PathNotAllowed>()(
  "PathNotAllowed",
  { message: Schema.String, path: Schema.String },
  HttpApiSchema.annotations({ status: 403 })
) {}

/** 403: the method is not in the capability's `proxy.methods`. */
export class MethodNotAllowed extends Schema.TaggedError<MethodNotAllowed>()(
  "MethodNotAllowed",
  { message: Schema.String, method: Schema.String },
  HttpApiSchema.annotations({ status: 403 })
) {}

/** 403: the session's capability has no `proxy` block (its token is delivered, not proxied). */
export class NotProxied extends Schema.TaggedError<NotProxied>()(
  "NotProxied",
  { message: Schema.String, capability: Schema.String },
  HttpApiSchema.annotations({ status: 403 })
) {}

/** 403: a CONNECT to a host outside the allow-list. */
export class HostNotAllowed extends Schema.TaggedError<HostNotAllowed>()(
  "HostNotAllowed",
  { message: Schema.String, host: Schema.String },
  HttpApiSchema.annotations({ status: 403 })
) {}

/** 429: the session used up its request or byte budget. */
export class ProxyBudgetExceeded extends Schema.TaggedError<ProxyBudgetExceeded>()(
  "ProxyBudgetExceeded",
  {
    message: Schema.String,
    limit: Schema.Literal("requests", "bytes"),
    used: Schema.Number,
    budget: Schema.Number
  },
  HttpApiSchema.annotations({ status: 429 })
) {}

/** 502: the upstream could not be reached or broke the connection before answering. */
export class UpstreamUnavailable extends Schema.TaggedError<UpstreamUnavailable>()(
  "UpstreamUnavailable",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 502 })
) {}

/** 504: the upstream sent no response headers within the proxy's timeout. */
export class UpstreamTimeout extends Schema.TaggedError<UpstreamTimeout>()(
  "UpstreamTimeout",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 504 })
) {}
