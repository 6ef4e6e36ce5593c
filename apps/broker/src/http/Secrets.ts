/**
 * Handlers of the vault's `secrets` group (operators only). Values go in, never out: `list`
 * returns names, versions and timestamps.
 */
import { Secret, SecretStore } from "@aap/vault"
import { HttpApiBuilder, type HttpApiGroup } from "@effect/platform"
import { Effect, type Layer } from "effect"
import { Api } from "../Api.js"
import type { OperatorAuth } from "../Auth.js"
import { SecretCache } from "../internal/delivery.js"

export const SecretsLive: Layer.Layer<
  HttpApiGroup.ApiGroup<"aap", "secrets">,
  never,
  SecretStore.SecretStore | SecretCache | OperatorAuth
> = HttpApiBuilder.group(Api, "secrets", (handlers) =>
  Effect.gen(function* () {
    const store = yield* SecretStore.SecretStore
    const cache = yield* SecretCache
    const written = (w: SecretStore.Written) =>
      new Secret.SecretVersion({ name: w.name, version: w.version, createdAt: w.createdAt })
    return handlers
      .handle("put", ({ path, payload }) =>
        store.put(path.wallet, path.name, payload.value).pipe(
          Effect.tap(() => Effect.sync(() => cache.invalidate(path.wallet, path.name))),
          Effect.map(written)
        )
      )
      .handle("list", ({ path }) =>
        Effect.map(store.list(path.wallet), (secrets) => ({ wallet: path.wallet, secrets }))
      )
      .handle("delete", ({ path }) =>
        store.delete(path.wallet, path.name).pipe(
          Effect.tap(() => Effect.sync(() => cache.invalidate(path.wallet, path.name))),
          Effect.map(written)
        )
      )
  })
)
