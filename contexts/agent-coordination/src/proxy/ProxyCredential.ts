/**
 * What delivery returns for a `bearer-token` capability with a `proxy` block: the proxy's base
 * URL and a proxy token, never the upstream key (issue 12). Only `effect`, so the delivery
 * contract can include it without an import cycle.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

export const ProxyCredential = Schema.TaggedStruct("proxy", {
  /** `<broker>/v1/proxy/<session>`: use it as the SDK's base URL. */
  baseUrl: Schema.String,
  /** The proxy token: send it where the SDK sends its API key (`header`), or as `Authorization: Bearer`. */
  token: Schema.Redacted(Schema.String),
  /** The header the upstream expects the key in (`authorization`, `x-api-key`). */
  header: Schema.String,
  /** The upstream the proxy forwards to (no credential in it). */
  upstream: Schema.String
})
export type ProxyCredential = typeof ProxyCredential.Type
