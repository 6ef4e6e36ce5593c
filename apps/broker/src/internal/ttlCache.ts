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
  /**
   * Calls `listener` on every `delete` (with its key) and `clear` (with `undefined`): a read of
   * that key begun before must not be cached. For the cache's lifetime.
   */
  readonly onInvalidate: (listener: (key: K | undefined) => void) => void
}

export const makeTtlCache = <K, V>(options: {
  readonly ttlMs: number
  readonly maxEntries: number
  readonly now?: () => number
}): TtlCache<K, V> => {
  const now = options.now ?? Date.now
  const entries = new Map<K, { readonly value: V; readonly expires: number }>()
  const listeners = new Set<(key: K | undefined) => void>()
  const invalidated = (key: K | undefined) => {
    for (const l of listeners) l(key)
  }
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
      entries.delete(key)
      invalidated(key)
    },
    clear: () => {
      entries.clear()
      invalidated(undefined)
    },
    size: () => entries.size,
    enabled: options.ttlMs > 0,
    onInvalidate: (listener) => {
      listeners.add(listener)
    }
  }
}

/**
 * Reads through `cache`, with one read per key at a time: callers that miss while a read of
 * the same key is running wait for it and share its result (success or failure) instead of
 * each reading the store. Without this, every entry expiring under load sent one store read
 * per concurrent request (32 at 32 connections, every `AAP_CACHE_TTL`), ADR 0055.
 *
 * - A value is cached only if `keep(value)` and no `delete` of its key (or `clear`) happened
 *   since the read began; a caller arriving after that starts a new read rather than joining
 *   one begun before it (a revocation is never answered from a read that predates it). An
 *   eviction of one key leaves the reads of other keys shared and cacheable.
 * - The read runs in its own fiber, so a caller that times out or goes away does not fail the
 *   others; the store's own timeouts bound it.
 * - With the cache disabled (`ttlMs` 0) every call reads.
 */
export const makeLoader = <K, V, E>(
  cache: TtlCache<K, V>,
  keep: (value: V) => boolean = () => true
): ((key: K, load: Effect.Effect<V, E>) => Effect.Effect<V, E>) => {
  interface Running {
    stale: boolean
    readonly done: Deferred.Deferred<V, E>
  }
  const running = new Map<K, Running>()
  // An eviction detaches the reads it overtook: later callers start a new read, and the
  // detached one's result goes to the callers that joined it before, not into the cache.
  cache.onInvalidate((key) => {
    if (key === undefined) {
      for (const entry of running.values()) entry.stale = true
      running.clear()
      return
    }
    const entry = running.get(key)
    if (entry === undefined) return
    entry.stale = true
    running.delete(key)
  })
  return (key, load) => {
    const hit = cache.get(key)
    if (hit !== undefined) return Effect.succeed(hit)
    if (!cache.enabled) return load
    return Effect.suspend(() => {
      const joined = running.get(key)
      if (joined !== undefined) return Deferred.await(joined.done)
      const entry: Running = { stale: false, done: Deferred.unsafeMake<V, E>(FiberId.none) }
      running.set(key, entry)
      const settle = Effect.flatMap(Effect.exit(load), (exit) =>
        Effect.sync(() => {
          if (running.get(key) === entry) running.delete(key)
          if (exit._tag === "Success" && !entry.stale && keep(exit.value)) cache.set(key, exit.value)
          Deferred.unsafeDone(entry.done, exit)
        })
      )
      return Effect.zipRight(Effect.forkDaemon(settle), Deferred.await(entry.done))
    })
  }
}
