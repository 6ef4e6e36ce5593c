/**
 * The OIDC issuer documents AWS fetches for Class A (`AssumeRoleWithWebIdentity`): discovery and
 * JWKS. Public, no auth (DESIGN §9, §10).
 *
 * @since 0.1.0
 */
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

/**
 * @since 0.1.0
 * @category errors
 */
export class IssuerUnavailable extends Schema.TaggedError<IssuerUnavailable>()(
  "IssuerUnavailable",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 503 })
) {}

/**
 * @since 0.1.0
 * @category schemas
 */
export const Discovery = Schema.Struct({
  issuer: Schema.String,
  jwks_uri: Schema.String,
  response_types_supported: Schema.Array(Schema.String),
  subject_types_supported: Schema.Array(Schema.String),
  id_token_signing_alg_values_supported: Schema.Array(Schema.String),
  claims_supported: Schema.Array(Schema.String)
}).annotations({ identifier: "OpenIdConfiguration" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const Jwks = Schema.Struct({
  keys: Schema.Array(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
}).annotations({ identifier: "Jwks" })

/**
 * @since 0.1.0
 * @category api
 */
export class OidcApi extends HttpApiGroup.make("oidc", { topLevel: true })
  .add(HttpApiEndpoint.get("discovery", "/.well-known/openid-configuration").addSuccess(Discovery))
  .add(HttpApiEndpoint.get("jwks", "/.well-known/jwks.json").addSuccess(Jwks).addError(IssuerUnavailable)) {}
