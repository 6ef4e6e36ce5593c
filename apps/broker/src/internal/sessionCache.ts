/**
 * The hot path of a delivery reads the caller's token and the session. Both are cached for at
 * most `AAP_CACHE_TTL` (default 2 s) — ADR 0051:
 * - token → principal: only successful authentications; a token revoked elsewhere keeps
 *   working for at most the TTL on this instance (one revoked through this instance's
 *   `/v1/agents/{id}/tokens/revoke` clears the cache at once). Concurrent misses share one read.
 * - session id → session: only `active` sessions; expiry is re-applied on every read against
 *   the clock, so a cached session never outlives its `expiresAt`; a transition made through
 *   this broker (revoke, approve, deny) evicts the entry at once; one made through another
 *   broker instance is seen within the TTL.
 */
import { type DeliveryPorts, Identities, Token } from "@aap/agent-coordination"
import { Context, Duration, Effect, Layer } from "effect"
import { Authenticator, type Principal } from "../Auth.js"
import { makeLoader, makeTtlCache, type TtlCache } from "./ttlCache.js"

/** What delivery needs of a session. */
export type CachedSession = DeliveryPorts.SessionView

export class SessionCache extends Context.Tag("@aap/broker/SessionCache")<
  SessionCache,
  TtlCache<string, CachedSession> & { readonly invalidate: (id: string) => void }
>() {}

/** The shared active-session cache; handlers evict on every transition they make. */
export const layerSessionCache = (ttl: Duration.Duration): Layer.Layer<SessionCache> =>
  Layer.sync(SessionCache, () => {
    const cache = makeTtlCache<string, CachedSession>({ ttlMs: Duration.toMillis(ttl), maxEntries: 10_000 })
    return { ...cache, invalidate: cache.delete }
  })

/** The `Authenticator` over `Identities.authenticate`, with the positive cache. */
export const layerAuthenticator = (
  ttl: Duration.Duration
): Layer.Layer<Authenticator, never, Identities.Identities> =>
  Layer.effect(
    Authenticator,
    Effect.gen(function* () {
      const identities = yield* Identities.Identities
      const cache = makeTtlCache<string, Principal>({ ttlMs: Duration.toMillis(ttl), maxEntries: 10_000 })
      // concurrent requests with one token share one store read when the entry has expired
      const load = makeLoader<
        string,
        Principal,
        Effect.Effect.Error<ReturnType<typeof identities.authenticate>>
      >(cache)
      return Authenticator.of({
        authenticate: (token) => load(Token.hash(token), identities.authenticate(token)),
        // a revocation names tokens by fingerprint, not by the hash the cache is keyed by
        forget: () => cache.clear()
      })
    })
  )
