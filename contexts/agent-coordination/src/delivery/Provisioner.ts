/**
 * Per-grant upstream keys for Class B (DESIGN §6.6, §9): instead of handing out the long-lived
 * secret, the broker mints a key for the session with the provider's key-management API and
 * revokes it when the session ends. The first adapter speaks OpenRouter's API:
 *
 * - `POST /api/v1/keys` (management key as Bearer) `{ name, limit?, expires_at }` →
 *   `201 { key, data: { hash, … } }` — the key string is returned only once;
 * - `DELETE /api/v1/keys/{hash}` → `200 { deleted: true }`.
 *
 * Each minted key also carries `expires_at` = the session's end, so it dies upstream even if
 * revocation never runs.
 *
 * @since 0.1.0
 */
import { HttpClient, HttpClientRequest, type HttpClientResponse } from "@effect/platform"
import { Context, Data, type Duration, Effect, Layer, Redacted, Schema } from "effect"

/** The provider refused (4xx other than 404 on revoke) or could not be reached / answered nonsense. */
export class ProvisionFailed extends Data.TaggedError("ProvisionFailed")<{
  readonly provider: string
  readonly operation: "mint" | "revoke"
  readonly kind: "refused" | "unreachable"
  readonly status?: number
}> {}

export interface MintRequest {
  readonly managementKey: Redacted.Redacted<string>
  /** A label visible in the provider's dashboard (`aap ses_… codex`); never secret. */
  readonly name: string
  readonly limitUsd?: number | undefined
  readonly expiresAt: Date
}

export interface MintedKey {
  readonly key: Redacted.Redacted<string>
  /** The provider's handle for the key (OpenRouter `data.hash`): what is stored, never the key. */
  readonly hash: string
}

export class Provisioner extends Context.Tag("@aap/agent-coordination/delivery/Provisioner")<
  Provisioner,
  {
    readonly provider: string
    readonly mint: (request: MintRequest) => Effect.Effect<MintedKey, ProvisionFailed>
    /** Idempotent: a key that is already gone counts as revoked. */
    readonly revoke: (
      managementKey: Redacted.Redacted<string>,
      hash: string
    ) => Effect.Effect<void, ProvisionFailed>
  }
>() {}

const CreateKeyResponse = Schema.Struct({
  key: Schema.String.pipe(Schema.minLength(1)),
  data: Schema.Struct({ hash: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9_-]{1,128}$/)) })
})

export interface OpenRouterConfig {
  /** `https://openrouter.ai` in production; a loopback server in tests. */
  readonly baseUrl: string
  readonly timeout: Duration.DurationInput
}

export const openRouterDefaults: OpenRouterConfig = {
  baseUrl: "https://openrouter.ai",
  timeout: "10 seconds"
}

export const makeOpenRouter = (
  config: Partial<OpenRouterConfig> = {}
): Effect.Effect<Context.Tag.Service<Provisioner>, never, HttpClient.HttpClient> =>
  Effect.gen(function* () {
    const { baseUrl, timeout } = { ...openRouterDefaults, ...config }
    const client = yield* HttpClient.HttpClient
    const base = baseUrl.replace(/\/+$/, "")
    const failed =
      (operation: "mint" | "revoke", kind: "refused" | "unreachable") =>
      (status?: number): ProvisionFailed =>
        new ProvisionFailed({
          provider: "openrouter",
          operation,
          kind,
          ...(status === undefined ? {} : { status })
        })

    const send = (operation: "mint" | "revoke", request: HttpClientRequest.HttpClientRequest) =>
      client.execute(request).pipe(
        Effect.timeoutFail({ duration: timeout, onTimeout: () => failed(operation, "unreachable")() }),
        Effect.catchTag("RequestError", () => Effect.fail(failed(operation, "unreachable")())),
        Effect.catchTag("ResponseError", (e) =>
          Effect.fail(failed(operation, "unreachable")(e.response.status))
        ),
        Effect.scoped
      )

    const classify = (operation: "mint" | "revoke", res: HttpClientResponse.HttpClientResponse) =>
      failed(
        operation,
        res.status >= 400 && res.status < 500 && res.status !== 429 ? "refused" : "unreachable"
      )(res.status)

    const mint = (request: MintRequest): Effect.Effect<MintedKey, ProvisionFailed> =>
      Effect.gen(function* () {
        const body = {
          name: request.name,
          ...(request.limitUsd === undefined ? {} : { limit: request.limitUsd }),
          expires_at: request.expiresAt.toISOString()
        }
        const req = HttpClientRequest.post(`${base}/api/v1/keys`).pipe(
          HttpClientRequest.bearerToken(Redacted.value(request.managementKey)),
          HttpClientRequest.acceptJson,
          HttpClientRequest.bodyUnsafeJson(body)
        )
        return yield* client.execute(req).pipe(
          Effect.flatMap((res) =>
            res.status === 200 || res.status === 201
              ? res.json.pipe(
                  Effect.flatMap(Schema.decodeUnknown(CreateKeyResponse)),
                  Effect.mapError(() => failed("mint", "unreachable")(res.status))
                )
              : Effect.fail(classify("mint", res))
          ),
          Effect.map((decoded) => ({ key: Redacted.make(decoded.key), hash: decoded.data.hash })),
          Effect.timeoutFail({ duration: timeout, onTimeout: () => failed("mint", "unreachable")() }),
          Effect.catchTags({
            RequestError: () => Effect.fail(failed("mint", "unreachable")()),
            ResponseError: (e) => Effect.fail(failed("mint", "unreachable")(e.response.status))
          }),
          Effect.scoped
        )
      })

    const revoke = (
      managementKey: Redacted.Redacted<string>,
      hash: string
    ): Effect.Effect<void, ProvisionFailed> =>
      send(
        "revoke",
        HttpClientRequest.del(`${base}/api/v1/keys/${encodeURIComponent(hash)}`).pipe(
          HttpClientRequest.bearerToken(Redacted.value(managementKey)),
          HttpClientRequest.acceptJson
        )
      ).pipe(
        Effect.flatMap((res) =>
          res.status === 200 || res.status === 204 || res.status === 404
            ? Effect.void
            : Effect.fail(classify("revoke", res))
        )
      )

    return Provisioner.of({ provider: "openrouter", mint, revoke })
  })

/** The OpenRouter adapter; needs an `HttpClient` (e.g. `FetchHttpClient.layer`). */
export const layerOpenRouter = (
  config: Partial<OpenRouterConfig> = {}
): Layer.Layer<Provisioner, never, HttpClient.HttpClient> => Layer.effect(Provisioner, makeOpenRouter(config))
