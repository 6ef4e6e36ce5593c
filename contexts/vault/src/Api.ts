/**
 * The vault's HTTP contract (DESIGN §10): the `secrets` group. Only `effect` and
 * `@effect/platform`; the broker composes it into its `HttpApi`, adds operator authentication
 * and writes the handlers (with `SecretStore`); the CLI derives a typed client from it.
 *
 * ## Names with `/`
 *
 * A secret name may contain `/` (`openrouter/api-key`). On the wire the `{name}` path segment
 * carries it percent-encoded: `PUT /v1/wallets/codex/secrets/openrouter%2Fapi-key`. The router
 * decodes `%2F` inside a parameter, and the `name` path schema encodes with
 * `encodeURIComponent`, so the typed client (`HttpApiClient`) sends the right URL by itself.
 * A hand-written request may also send the slashes raw (`.../secrets/openrouter/api-key`); the
 * broker runs {@link canonicalSecretPath} over the request URL before routing (on the Node
 * request, `req.url`, before it reaches the HttpApi app), which turns the tail after
 * `/secrets/` into one encoded segment. Names never contain `%` or `#` (see
 * `Secret`), so decoding is unambiguous.
 *
 * @since 0.1.0
 */
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema } from "@effect/platform"
import { ParseResult, Schema } from "effect"
import { SecretSummary, SecretVersion } from "./Secret.js"
import {
  InvalidSecretName,
  InvalidSecretValue,
  InvalidWallet,
  SecretNotFound,
  SecretTooLarge,
  VaultUnavailable
} from "./VaultError.js"

/**
 * The `{name}` path parameter: percent-encoded on the wire, the plain name in the handler.
 * Not validated here: the store answers a bad name with `InvalidSecretName` (400).
 */
export const SecretNameParam = Schema.transformOrFail(Schema.String, Schema.String, {
  strict: true,
  decode: (encoded, _, ast) => {
    try {
      return ParseResult.succeed(decodeURIComponent(encoded))
    } catch {
      return ParseResult.fail(new ParseResult.Type(ast, encoded, "malformed percent-encoding"))
    }
  },
  encode: (name) => ParseResult.succeed(encodeURIComponent(name))
}).annotations({ identifier: "SecretNameParam", description: "secret name, `/` percent-encoded as %2F" })

const walletParam = HttpApiSchema.param("wallet", Schema.String)
const nameParam = HttpApiSchema.param("name", SecretNameParam)

/** `PUT` body. The value is `Redacted` from the moment it is decoded. */
export class PutSecretRequest extends Schema.Class<PutSecretRequest>("PutSecretRequest")({
  value: Schema.Redacted(Schema.String)
}) {}

/** `GET /v1/wallets/{wallet}/secrets`: metadata only, never values. */
export class SecretList extends Schema.Class<SecretList>("SecretList")({
  wallet: Schema.String,
  secrets: Schema.Array(SecretSummary)
}) {}

/** The `secrets` group. The broker adds its operator auth middleware when composing. */
export class SecretsApi extends HttpApiGroup.make("secrets")
  .add(
    HttpApiEndpoint.put("put")`/v1/wallets/${walletParam}/secrets/${nameParam}`
      .setPayload(PutSecretRequest)
      .addSuccess(SecretVersion)
      .addError(InvalidWallet)
      .addError(InvalidSecretName)
      .addError(InvalidSecretValue)
      .addError(SecretTooLarge)
      .addError(VaultUnavailable)
  )
  .add(
    HttpApiEndpoint.get("list")`/v1/wallets/${walletParam}/secrets`
      .addSuccess(SecretList)
      .addError(InvalidWallet)
      .addError(VaultUnavailable)
  )
  .add(
    HttpApiEndpoint.del("delete")`/v1/wallets/${walletParam}/secrets/${nameParam}`
      .addSuccess(SecretVersion)
      .addError(InvalidWallet)
      .addError(InvalidSecretName)
      .addError(SecretNotFound)
      .addError(VaultUnavailable)
  ) {}

const NESTED = /^(\/v1\/wallets\/[^/?#]+\/secrets\/)([^?#]*\/[^?#]*)(.*)$/s

/**
 * Rewrite `/v1/wallets/<w>/secrets/a/b?x` to `/v1/wallets/<w>/secrets/a%2Fb?x` so a raw `/` in
 * a secret name reaches the `{name}` parameter. Other URLs are returned unchanged. Pure; the
 * broker applies it to the request URL before routing.
 */
export const canonicalSecretPath = (url: string): string => {
  const match = NESTED.exec(url)
  if (match === null) return url
  const [, head, tail, rest] = match
  return `${head}${tail!.split("/").join("%2F")}${rest}`
}
