/**
 * A cache of unwrapped DEKs for hot reads, in the manner of the AWS Encryption SDK's caching
 * materials manager: bounded by entries (LRU), by age and by number of uses per entry; held in
 * memory only, never persisted, wiped on eviction.
 *
 * `layer(options)` wraps the `KeyProvider` it is given and provides a `KeyProvider` that
 * consults the cache in `decryptDataKey` (and seeds it from `generateDataKey`, since a secret
 * written is usually read soon), plus the `DekCache` control tag.
 *
 * An entry is keyed by (wallet, purpose, key id, wrapped DEK): a cache hit needs exactly the
 * inputs that unwrapped it, so the cache cannot turn a wrong context into a successful unwrap,
 * and a read with other inputs (a tampered or misplaced wrapped key) leaves the entry alone.
 * After crypto-shredding a wallet call `invalidateWallet` (or wait `maxAge`): until then a
 * cached DEK of that wallet still opens its secrets in this process.
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Layer, Redacted } from "effect"
import { type EncryptionContext, KeyProvider, type KeyProviderShape } from "./KeyProvider.js"

/**
 * @since 0.1.0
 */
export interface Options {
  /** Most entries held (least recently used evicted first). Default 1,024. */
  readonly maxEntries?: number
  /** Age after which an entry is not used again. Default 5 minutes. */
  readonly maxAge?: Duration.DurationInput
  /** Uses after which an entry is dropped (the next read unwraps again). Default 10,000. */
  readonly maxUses?: number
  /** Seed the cache with keys from `generateDataKey`. Default true. */
  readonly cacheOnGenerate?: boolean
}

/**
 * @since 0.1.0
 */
export interface Stats {
  readonly entries: number
  readonly hits: number
  readonly misses: number
  readonly evictions: number
}

/**
 * @since 0.1.0
 */
export interface DekCacheShape {
  readonly clear: Effect.Effect<void>
  readonly invalidateWallet: (wallet: string) => Effect.Effect<void>
  readonly stats: Effect.Effect<Stats>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class DekCache extends Context.Tag("@aap/key-custody/DekCache")<DekCache, DekCacheShape>() {}

interface Entry {
  readonly hash: number
  readonly wallet: string
  readonly purpose: string
  readonly keyId: string
  /** A copy of the wrapped key (in the wrapped-key slab when it fits a slot). */
  readonly wrapped: Uint8Array
  readonly dek: Uint8Array
  readonly slot: number
  readonly createdAt: number
  uses: number
  // LRU list, most recent at `head`: O(1) touch and eviction, no Map iteration.
  newer: Entry | undefined
  older: Entry | undefined
}

/**
 * The map key: a 30-bit hash (a small integer, no string to build) of the last 16 bytes of the
 * wrapped key, its authentication tag: random-looking and unique per wrap. A hit also compares
 * the context, the key id and the whole wrapped key, so a collision is only ever a miss.
 */
const tagHash = (wrapped: Uint8Array): number => {
  let h = 0x811c9dc5
  for (let i = Math.max(0, wrapped.length - 16); i < wrapped.length; i++) {
    h = Math.imul(h ^ wrapped[i]!, 0x01000193)
  }
  return h >>> 2
}

/** Slot size of the wrapped-key slab: a local wrap (65 bytes) fits. */
const WRAPPED_SLOT_BYTES = 80

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** The entry was made from exactly these inputs. */
const madeFrom = (entry: Entry, context: EncryptionContext, keyId: string, wrapped: Uint8Array): boolean =>
  entry.wallet === context.wallet &&
  entry.purpose === context.purpose &&
  entry.keyId === keyId &&
  sameBytes(entry.wrapped, wrapped)

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  inner: KeyProviderShape,
  options: Options = {}
): { readonly provider: KeyProviderShape; readonly control: DekCacheShape } => {
  const maxEntries = Math.max(1, options.maxEntries ?? 1024)
  const maxAgeMillis = Duration.toMillis(Duration.decode(options.maxAge ?? Duration.minutes(5)))
  const maxUses = Math.max(1, options.maxUses ?? 10_000)
  const cacheOnGenerate = options.cacheOnGenerate ?? true
  const entries = new Map<number, Entry>()
  // DEKs live in one slab of 32-byte slots (data keys are 32 bytes; other sizes get their own
  // copy): no allocation per entry, and clearing the cache zeroes one buffer. The copies of
  // the wrapped keys live in a second slab, slot for slot (local wraps are 65 bytes; longer
  // ones, such as KMS ciphertext blobs, get their own copy).
  const slab = new Uint8Array(maxEntries * 32)
  const wrappedSlab = new Uint8Array(maxEntries * WRAPPED_SLOT_BYTES)
  const freeSlots: Array<number> = Array.from({ length: maxEntries }, (_, i) => maxEntries - 1 - i)
  let head: Entry | undefined
  let tail: Entry | undefined
  let hits = 0
  let misses = 0
  let evictions = 0

  const unlink = (entry: Entry) => {
    if (entry.newer === undefined) head = entry.older
    else entry.newer.older = entry.older
    if (entry.older === undefined) tail = entry.newer
    else entry.older.newer = entry.newer
    entry.newer = undefined
    entry.older = undefined
  }
  const pushHead = (entry: Entry) => {
    entry.older = head
    entry.newer = undefined
    if (head !== undefined) head.newer = entry
    head = entry
    if (tail === undefined) tail = entry
  }
  const drop = (entry: Entry) => {
    entries.delete(entry.hash)
    unlink(entry)
    entry.dek.fill(0)
    if (entry.slot >= 0) freeSlots.push(entry.slot)
    evictions++
  }
  const insert = (
    context: EncryptionContext,
    keyId: string,
    wrapped: Uint8Array,
    dek: Uint8Array,
    now: number
  ) => {
    const hash = tagHash(wrapped)
    const existing = entries.get(hash)
    if (existing !== undefined) drop(existing)
    while (entries.size >= maxEntries && tail !== undefined) drop(tail)
    // After the evictions above a slot is always free.
    const slot = freeSlots.pop() ?? -1
    let stored: Uint8Array
    if (slot >= 0 && dek.length === 32) {
      stored = slab.subarray(slot * 32, slot * 32 + 32)
      stored.set(dek)
    } else {
      stored = new Uint8Array(dek)
    }
    // A copy: the caller may change its array later, and a hit must match what was unwrapped.
    let wrappedCopy: Uint8Array
    if (slot >= 0 && wrapped.length <= WRAPPED_SLOT_BYTES) {
      const at = slot * WRAPPED_SLOT_BYTES
      wrappedCopy = wrappedSlab.subarray(at, at + wrapped.length)
      wrappedCopy.set(wrapped)
    } else {
      wrappedCopy = new Uint8Array(wrapped)
    }
    const entry: Entry = {
      hash,
      wallet: context.wallet,
      purpose: context.purpose,
      keyId,
      wrapped: wrappedCopy,
      dek: stored,
      slot,
      createdAt: now,
      uses: 0,
      newer: undefined,
      older: undefined
    }
    entries.set(hash, entry)
    pushHead(entry)
  }

  const provider: KeyProviderShape = {
    generateDataKey: cacheOnGenerate
      ? (context) =>
          Effect.clockWith((clock) =>
            Effect.map(inner.generateDataKey(context), (dataKey) => {
              insert(
                context,
                dataKey.keyId,
                dataKey.wrapped,
                Redacted.value(dataKey.plaintext),
                clock.unsafeCurrentTimeMillis()
              )
              return dataKey
            })
          )
      : (context) => inner.generateDataKey(context),
    decryptDataKey: (context, wrapped, keyId) =>
      Effect.clockWith((clock) => {
        const now = clock.unsafeCurrentTimeMillis()
        const entry = entries.get(tagHash(wrapped))
        // An entry made from other inputs is left alone (a tampered or misplaced wrapped key
        // cannot evict it); the provider below decides.
        if (entry !== undefined && madeFrom(entry, context, keyId, wrapped)) {
          if (now - entry.createdAt < maxAgeMillis && entry.uses < maxUses) {
            entry.uses++
            hits++
            if (head !== entry) {
              unlink(entry)
              pushHead(entry)
            }
            return Effect.succeed(Redacted.make(new Uint8Array(entry.dek)))
          }
          drop(entry)
        }
        misses++
        return Effect.map(inner.decryptDataKey(context, wrapped, keyId), (dek) => {
          insert(context, keyId, wrapped, Redacted.value(dek), now)
          return dek
        })
      }),
    rewrap: inner.rewrap,
    rotate: inner.rotate,
    describe: inner.describe
  }

  const control: DekCacheShape = {
    clear: Effect.sync(() => {
      for (const entry of [...entries.values()]) drop(entry)
    }),
    invalidateWallet: (wallet) =>
      Effect.sync(() => {
        for (const entry of [...entries.values()]) if (entry.wallet === wallet) drop(entry)
      }),
    stats: Effect.sync(() => ({ entries: entries.size, hits, misses, evictions }))
  }
  return { provider, control }
}

/**
 * Wrap the `KeyProvider` in scope with a DEK cache. The cache is wiped when the layer's scope
 * closes.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<KeyProvider | DekCache, never, KeyProvider> =>
  Layer.scopedContext(
    Effect.gen(function* () {
      const inner = yield* KeyProvider
      const { control, provider } = make(inner, options)
      yield* Effect.addFinalizer(() => control.clear)
      return Context.make(KeyProvider, provider).pipe(Context.add(DekCache, control))
    })
  )
