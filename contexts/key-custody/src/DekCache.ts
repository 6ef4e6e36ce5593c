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
 * inputs that unwrapped it, so the cache cannot turn a wrong context into a successful unwrap.
 * After crypto-shredding a wallet call `invalidateWallet` (or wait `maxAge`): until then a
 * cached DEK of that wallet still opens its secrets in this process.
 *
 * @since 0.1.0
 */
import { Clock, Context, Duration, Effect, Layer, Redacted } from "effect"
import { KeyProvider, type KeyProviderShape } from "./KeyProvider.js"

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
  readonly key: string
  readonly wrapped: Uint8Array
  readonly dek: Uint8Array
  readonly slot: number
  readonly wallet: string
  readonly createdAt: number
  uses: number
  // LRU list, most recent at `head`: O(1) touch and eviction, no Map iteration.
  newer: Entry | undefined
  older: Entry | undefined
}

/**
 * The map key: context, key id and the last 16 bytes of the wrapped key (its authentication
 * tag: random-looking and unique per wrap). A hit also compares the whole wrapped key, so a
 * collision is only ever a miss.
 */
const cacheKey = (wallet: string, purpose: string, keyId: string, wrapped: Uint8Array) =>
  `${wallet}\u0000${purpose}\u0000${keyId}\u0000${Buffer.from(wrapped.buffer, wrapped.byteOffset, wrapped.length).toString("latin1", Math.max(0, wrapped.length - 16))}`

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(b)

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
  const entries = new Map<string, Entry>()
  // DEKs live in one slab of 32-byte slots (data keys are 32 bytes; other sizes get their own
  // copy): no allocation per entry, and clearing the cache zeroes one buffer.
  const slab = Buffer.alloc(maxEntries * 32)
  const freeSlots: Array<number> = Array.from({ length: maxEntries }, (_, i) => maxEntries - 1 - i)
  const store = (dek: Uint8Array): { dek: Uint8Array; slot: number } => {
    const slot = dek.length === 32 ? freeSlots.pop() : undefined
    if (slot === undefined) return { dek: new Uint8Array(dek), slot: -1 }
    const view = slab.subarray(slot * 32, slot * 32 + 32)
    view.set(dek)
    return { dek: view, slot }
  }
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
    entries.delete(entry.key)
    unlink(entry)
    entry.dek.fill(0)
    if (entry.slot >= 0) freeSlots.push(entry.slot)
    evictions++
  }
  const insert = (key: string, wallet: string, wrapped: Uint8Array, dek: Uint8Array, now: number) => {
    const existing = entries.get(key)
    if (existing !== undefined) drop(existing)
    while (entries.size >= maxEntries && tail !== undefined) drop(tail)
    const entry: Entry = {
      key,
      wrapped: Buffer.from(wrapped),
      ...store(dek),
      wallet,
      createdAt: now,
      uses: 0,
      newer: undefined,
      older: undefined
    }
    entries.set(key, entry)
    pushHead(entry)
    while (entries.size > maxEntries && tail !== undefined) drop(tail)
  }

  const provider: KeyProviderShape = {
    generateDataKey: (context) =>
      cacheOnGenerate
        ? Effect.flatMap(inner.generateDataKey(context), (dataKey) =>
            Effect.map(Clock.currentTimeMillis, (now) => {
              insert(
                cacheKey(context.wallet, context.purpose, dataKey.keyId, dataKey.wrapped),
                context.wallet,
                dataKey.wrapped,
                Redacted.value(dataKey.plaintext),
                now
              )
              return dataKey
            })
          )
        : inner.generateDataKey(context),
    decryptDataKey: (context, wrapped, keyId) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const key = cacheKey(context.wallet, context.purpose, keyId, wrapped)
        const entry = entries.get(key)
        if (entry !== undefined) {
          if (
            now - entry.createdAt < maxAgeMillis &&
            entry.uses < maxUses &&
            sameBytes(entry.wrapped, wrapped)
          ) {
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
          insert(key, context.wallet, wrapped, Redacted.value(dek), now)
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
