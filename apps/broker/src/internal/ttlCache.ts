/** A bounded map whose entries expire after `ttlMs` (insertion order eviction when full). */
import { Deferred, Effect, FiberId } from "effect"

export interface TtlCache<K, V> {
  readonly get: (key: K) => V | undefined
  readonly set: (key: K, value: V) => void
  readonly delete: (key: K) => void
  readonly clear: () => void
  readonly size: () => number
  /** False when `ttlMs` is 0: nothing is kept (and `makeLoader` shares no reads either). */
  readonly enabled: boolean
  /** Bumped by every `delete` and `clear`: a read begun before that must not be cached. */
  readonly epoch: () => number
}

export const makeTtlCache = <K, V>(options: {
  readonly ttlMs: number
  readonly maxEntries: number
  readonly now?: () => number
}): TtlCache<K, V> => {
  const now = options.now ?? Date.now
  const entries = new Map<K, { readonly value: V; readonly expires: number }>()
  let epoch = 0
  return {
    get: (key) => {
      const e = entries.get(key)
      if (e === undefined) return undefined
      if (e.expires <= now()) {
        entries.delete(key)
        return undefined
      }
      return e.value
    },
    set: (key, value) => {
      if (options.ttlMs <= 0) return
      if (entries.size >= options.maxEntries) {
        const oldest = entries.keys().next()
        if (!oldest.done) entries.delete(oldest.value)
      }
      entries.set(key, { value, expires: now() + options.ttlMs })
    },
    delete: (key) => {
      epoch++
      entries.delete(key)
    },
    clear: () => {
      epoch++
      entries.clear()
    },
    size: () => entries.size,
    enabled: options.ttlMs > 0,
    epoch: () => epoch
  }
}

/**
 * Reads through `cache`, with one read per key at a time: callers that miss while a read of
 * the same key is running wait for it and share its result (success or failure) instead of
 * each reading the store. Without this, every entry expiring under load sent one store read
 * per concurrent request (32 at 32 connections, every `AAP_CACHE_TTL`), ADR 0055.
 *
 * - A value is cached only if `keep(value)` and no `delete`/`clear` happened since the read
 *   began; a caller arriving after a `delete` starts a new read rather than joining one begun
 *   before it (a revocation is never answered from a read that predates it).
 * - The read runs in its own fiber, so a caller that times out or goes away does not fail the
 *   others; the store's own timeouts bound it.
 * - With the cache disabled (`ttlMs` 0) every call reads.
 */
export const makeLoader = <K, V, E>(
  cache: TtlCache<K, V>,
  keep: (value: V) => boolean = () => true
): ((key: K, load: Effect.Effect<V, E>) => Effect.Effect<V, E>) => {
  const running = new Map<K, { readonly epoch: number; readonly done: Deferred.Deferred<V, E> }>()
  return (key, load) => {
    const hit = cache.get(key)
    if (hit !== undefined) return Effect.succeed(hit)
    if (!cache.enabled) return load
    return Effect.suspend(() => {
      const epoch = cache.epoch()
      const joined = running.get(key)
      if (joined !== undefined && joined.epoch === epoch) return Deferred.await(joined.done)
      const entry = { epoch, done: Deferred.unsafeMake<V, E>(FiberId.none) }
      running.set(key, entry)
      const settle = Effect.flatMap(Effect.exit(load), (exit) =>
        Effect.sync(() => {
          if (running.get(key) === entry) running.delete(key)
          if (exit._tag === "Success" && cache.epoch() === epoch && keep(exit.value))
            cache.set(key, exit.value)
          Deferred.unsafeDone(entry.done, exit)
        })
      )
      return Effect.zipRight(Effect.forkDaemon(settle), Deferred.await(entry.done))
    })
  }
}
