/** A bounded map whose entries expire after `ttlMs` (insertion order eviction when full). */
export interface TtlCache<K, V> {
  readonly get: (key: K) => V | undefined
  readonly set: (key: K, value: V) => void
  readonly delete: (key: K) => void
  readonly clear: () => void
  readonly size: () => number
}

export const makeTtlCache = <K, V>(options: {
  readonly ttlMs: number
  readonly maxEntries: number
  readonly now?: () => number
}): TtlCache<K, V> => {
  const now = options.now ?? Date.now
  const entries = new Map<K, { readonly value: V; readonly expires: number }>()
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
    },
    clear: () => entries.clear(),
    size: () => entries.size
  }
}
