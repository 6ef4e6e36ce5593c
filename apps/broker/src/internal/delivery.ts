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
import { type CachedSession, SessionCache } from "./sessionCache.js"
import { makeLoader, makeTtlCache, type TtlCache } from "./ttlCache.js"

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
    // concurrent deliveries of one session share one store read when the entry has expired;
    // an eviction (revoke, approve, deny here) makes the next caller read again
    const load = makeLoader<string, CachedSession, Effect.Effect.Error<ReturnType<typeof inner.get>>>(
      cache,
      (view) => view.status === "active"
    )
    return DeliveryPorts.Sessions.of({ get: (id) => load(id, inner.get(id)) })
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
      // concurrent deliveries of one secret share one vault read when the entry has expired
      const load = makeLoader<
        string,
        Redacted.Redacted<string>,
        DeliveryPorts.SecretMissing | DeliveryPorts.SecretsUnavailable
      >(cache)
      const secrets = DeliveryPorts.Secrets.of({
        get: (wallet, name) =>
          load(
            key(wallet, name),
            store.get(wallet, name).pipe(
              Effect.map((s): Redacted.Redacted<string> => s.value),
              Effect.catchAll(
                (e): Effect.Effect<never, DeliveryPorts.SecretMissing | DeliveryPorts.SecretsUnavailable> =>
                  e._tag === "SecretNotFound"
                    ? Effect.fail(new DeliveryPorts.SecretMissing({ wallet, name }))
                    : Effect.fail(new DeliveryPorts.SecretsUnavailable({ reason: e._tag }))
              )
            )
          ),
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
