/**
 * Delivery's narrow ports adapted onto the real contexts, with the hot-path caches of ADR 0051:
 * - `DeliveryPorts.Sessions` over the session repository: only `active` sessions are cached,
 *   expiry is re-applied on every read, transitions made here evict at once.
 * - `DeliveryPorts.Secrets` over the vault: a decrypted value is kept (as `Redacted`, in memory
 *   only) for at most `secretTtl`; writes and deletes made here evict at once.
 */
import { DeliveryPorts, type SessionRepository } from "@aap/agent-coordination"
import { AuditLog } from "@aap/audit"
import { SecretStore } from "@aap/vault"
import { Context, Duration, Effect, Layer, type Redacted } from "effect"
import { BrokerMetrics } from "./observability.js"
import { SessionCache } from "./sessionCache.js"
import { makeTtlCache, type TtlCache } from "./ttlCache.js"

/**
 * Over `DeliveryPorts.sessionsFromRepository` (delivery re-checks expiry against its own clock,
 * so a cached `active` session never outlives its `expiresAt`).
 */
export const layerDeliverySessions: Layer.Layer<
  DeliveryPorts.Sessions,
  never,
  SessionRepository.SessionRepository | SessionCache
> = Layer.effect(
  DeliveryPorts.Sessions,
  Effect.gen(function* () {
    const inner = yield* DeliveryPorts.Sessions
    const cache = yield* SessionCache
    return DeliveryPorts.Sessions.of({
      get: (id) => {
        const hit = cache.get(id)
        if (hit !== undefined) return Effect.succeed(hit)
        return Effect.tap(inner.get(id), (view) =>
          Effect.sync(() => {
            if (view.status === "active") cache.set(id, view)
          })
        )
      }
    })
  })
).pipe(Layer.provide(DeliveryPorts.sessionsFromRepository))

/** Evicts cached plaintext when a secret changes through this broker. */
export class SecretCache extends Context.Tag("@aap/broker/SecretCache")<
  SecretCache,
  { readonly invalidate: (wallet: string, name: string) => void }
>() {}

const key = (wallet: string, name: string) => `${wallet}\u0000${name}`

export const layerSecrets = (
  secretTtl: Duration.Duration
): Layer.Layer<DeliveryPorts.Secrets | SecretCache, never, SecretStore.SecretStore> =>
  Layer.effectContext(
    Effect.gen(function* () {
      const store = yield* SecretStore.SecretStore
      const cache: TtlCache<string, Redacted.Redacted<string>> = makeTtlCache({
        ttlMs: Duration.toMillis(secretTtl),
        maxEntries: 1_000
      })
      const secrets = DeliveryPorts.Secrets.of({
        get: (wallet, name) => {
          const hit = cache.get(key(wallet, name))
          if (hit !== undefined) return Effect.succeed(hit)
          return store.get(wallet, name).pipe(
            Effect.map((s): Redacted.Redacted<string> => s.value),
            Effect.tap((value) => Effect.sync(() => cache.set(key(wallet, name), value))),
            Effect.catchAll(
              (e): Effect.Effect<never, DeliveryPorts.SecretMissing | DeliveryPorts.SecretsUnavailable> =>
                e._tag === "SecretNotFound"
                  ? Effect.fail(new DeliveryPorts.SecretMissing({ wallet, name }))
                  : Effect.fail(new DeliveryPorts.SecretsUnavailable({ reason: e._tag }))
            )
          )
        },
        put: (wallet, name, value) =>
          store.put(wallet, name, value).pipe(
            Effect.tap(() => Effect.sync(() => cache.delete(key(wallet, name)))),
            Effect.asVoid,
            Effect.mapError((e) => new DeliveryPorts.SecretsUnavailable({ reason: e._tag }))
          )
      })
      return Context.make(DeliveryPorts.Secrets, secrets).pipe(
        Context.add(SecretCache, {
          invalidate: (wallet: string, name: string) => cache.delete(key(wallet, name))
        })
      )
    })
  )

/** The audit log with append latency recorded in `aap_audit_append_duration_seconds`. */
export const layerTimedAudit: Layer.Layer<AuditLog.AuditLog, never, AuditLog.AuditLog | BrokerMetrics> =
  Layer.effect(
    AuditLog.AuditLog,
    Effect.gen(function* () {
      const inner = yield* AuditLog.AuditLog
      const metrics = yield* BrokerMetrics
      return AuditLog.AuditLog.of({
        ...inner,
        append: (input) => {
          const started = performance.now()
          return inner
            .append(input)
            .pipe(
              Effect.onExit((exit) =>
                Effect.sync(() =>
                  metrics.auditAppend.observe(
                    { outcome: exit._tag === "Success" ? "success" : "error" },
                    (performance.now() - started) / 1000
                  )
                )
              )
            )
        }
      })
    })
  )
