/**
 * The keyring core shared by the local keyring file and the in-memory test keyring.
 *
 * Hierarchy (wiki/key-security.md):
 *   UMK versions (random 256-bit, one primary) — stored in the keyring document
 *   └─ per-wallet KEK versions, AES-256-GCM-wrapped under a UMK version
 *      └─ per-secret-version DEKs, AES-256-GCM-wrapped under the wallet's KEK, AAD = context
 *   └─ the system root secret (SystemKeys), wrapped under a UMK version
 */
import { createSecretKey, type KeyObject } from "node:crypto"
import { Effect, Redacted } from "effect"
import {
  DecryptFailed,
  KeyNotFound,
  type KeyProviderError,
  KeyringUnreadable,
  KeyringWriteFailed
} from "../KeyCustodyError.js"
import type { DataKey, Description, EncryptionContext, Rewrapped } from "../KeyProvider.js"
import {
  fillRandom,
  freshKey,
  freshNonce,
  gcmOpen,
  gcmSeal,
  gcmSealInto,
  KEY_BYTES,
  NONCE_BYTES,
  TAG_BYTES,
  utf8
} from "./aead.js"
import { checkContext, contextProblem } from "./validate.js"

export interface UmkRecord {
  readonly version: number
  readonly key: string
  readonly createdAt: string
}
export interface KekRecord {
  readonly version: number
  readonly umk: number
  readonly nonce: string
  readonly wrapped: string
  readonly createdAt: string
}
export interface WalletRecord {
  readonly current: number
  readonly keks: ReadonlyArray<KekRecord>
  readonly shreddedThrough?: number
  readonly shreddedAt?: string
}
export interface SystemRootRecord {
  readonly umk: number
  readonly nonce: string
  readonly wrapped: string
  readonly createdAt: string
}
export interface KeyringDoc {
  readonly format: "aap-keyring"
  readonly version: 1
  readonly kind: "local"
  /** Incremented by every write; lets a process notice another process's change. */
  readonly revision: number
  readonly primary: number
  readonly umks: ReadonlyArray<UmkRecord>
  readonly wallets: Readonly<Record<string, WalletRecord>>
  readonly system: SystemRootRecord
}

/** Wrapped DEK (local): 0x01 | KEK version (u32 BE) | nonce (12) | ciphertext+tag (48). */
const WRAP_FORMAT = 0x01
const WRAP_HEADER = 5
export const WRAPPED_DEK_BYTES = WRAP_HEADER + NONCE_BYTES + KEY_BYTES + TAG_BYTES

export const localKeyId = (wallet: string, kekVersion: number): string => `local:${wallet}:kek-v${kekVersion}`
const umkAad = (version: number) => `umk-v${version}`
const kekAad = (wallet: string, kekVersion: number, umk: number) =>
  utf8(`aap:v1:kek:${wallet}:kek-v${kekVersion}:${umkAad(umk)}`)
const systemAad = (umk: number) => utf8(`aap:v1:system-root:${umkAad(umk)}`)
/**
 * `aap:v1:dek:<wallet>:<purpose>:` followed by the wrap's 5-byte header. Wallet and purpose
 * are validated ASCII, so one latin1 conversion builds the whole AAD.
 */
const dekAad = (context: EncryptionContext, header: Uint8Array) =>
  Buffer.from(
    `aap:v1:dek:${context.wallet}:${context.purpose}:${String.fromCharCode(header[0]!, header[1]!, header[2]!, header[3]!, header[4]!)}`,
    "latin1"
  )
const wrapHeader = (kekVersion: number): Uint8Array =>
  Uint8Array.of(
    WRAP_FORMAT,
    kekVersion >>> 24,
    (kekVersion >>> 16) & 0xff,
    (kekVersion >>> 8) & 0xff,
    kekVersion & 0xff
  )

/**
 * A wallet's current KEK with what every new wrap under it repeats: its key id and the DEK-wrap
 * AAD per purpose (a handful of purposes exist; at most `MAX_MEMO_PURPOSES` are kept).
 * Derived from the document alone, so it is rebuilt whenever a document is adopted.
 */
interface CurrentKek {
  readonly version: number
  readonly key: KeyObject
  readonly keyId: string
  readonly aads: Map<string, Buffer>
}
const MAX_MEMO_PURPOSES = 16

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64")
const unb64 = (s: string) => Buffer.from(s, "base64")
const now = () => new Date().toISOString()

/** A copy in its own ArrayBuffer (never a view into Node's shared pool); zeroes the source. */
export const own = (buf: Buffer): Uint8Array => {
  const copy = new Uint8Array(buf)
  buf.fill(0)
  return copy
}

const wrapUnder = (umkKey: Uint8Array, secret: Uint8Array, aad: Uint8Array) => {
  const nonce = freshNonce()
  return { nonce: b64(nonce), wrapped: b64(gcmSeal(umkKey, nonce, secret, aad)) }
}

/** A fresh keyring document: UMK v1 (primary), no wallets, a fresh system root secret. */
export const freshDoc = (): KeyringDoc => {
  const umk = freshKey()
  const root = freshKey()
  const createdAt = now()
  const doc: KeyringDoc = {
    format: "aap-keyring",
    version: 1,
    kind: "local",
    revision: 1,
    primary: 1,
    umks: [{ version: 1, key: b64(umk), createdAt }],
    wallets: {},
    system: { umk: 1, ...wrapUnder(umk, root, systemAad(1)), createdAt }
  }
  umk.fill(0)
  root.fill(0)
  return doc
}

/**
 * Where a keyring document lives. `exclusive` serializes mutations across processes (a lock
 * file); `reload` returns the stored document when it changed since `revision`.
 */
export interface Storage {
  readonly exclusive: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E | KeyringWriteFailed>
  readonly reload: (revision: number) => Effect.Effect<KeyringDoc | undefined, KeyringWriteFailed>
  readonly write: (doc: KeyringDoc) => Effect.Effect<void, KeyringWriteFailed>
}

export const memoryStorage: Storage = {
  exclusive: (effect) => effect,
  reload: () => Effect.succeed(undefined),
  write: () => Effect.void
}

/**
 * In-memory view of a keyring document with its unwrapped keys. Mutations (new wallet KEK,
 * rotation, shredding) build the next document, persist it, and only then commit it.
 */
export class KeyringCore {
  private umks = new Map<number, Buffer>()
  // KEKs as KeyObjects: node:crypto skips re-importing the raw key on every wrap/unwrap.
  private keks = new Map<string, KeyObject>()
  private current = new Map<string, CurrentKek>()
  private systemRoot: Buffer

  private constructor(
    private doc: KeyringDoc,
    private readonly storage: Storage,
    private readonly lock: Effect.Semaphore,
    readonly provider: "local-keyring" | "memory",
    readonly location: string
  ) {
    this.systemRoot = Buffer.alloc(0)
  }

  /**
   * Load a document: decode the UMKs, unwrap every KEK whose UMK is present and the system
   * root. A wrap that does not open means the file was altered: `KeyringUnreadable`.
   */
  static load(
    doc: KeyringDoc,
    storage: Storage,
    provider: "local-keyring" | "memory",
    location: string
  ): Effect.Effect<KeyringCore, KeyringUnreadable> {
    return Effect.gen(function* () {
      const lock = yield* Effect.makeSemaphore(1)
      const core = new KeyringCore(doc, storage, lock, provider, location)
      const problem = core.hydrate(doc)
      if (problem !== undefined) return yield* new KeyringUnreadable({ path: location, reason: problem })
      return core
    })
  }

  private hydrate(doc: KeyringDoc): string | undefined {
    const umks = new Map<number, Buffer>()
    for (const umk of doc.umks) {
      const key = unb64(umk.key)
      if (key.length !== KEY_BYTES) return `master key umk-v${umk.version} is not 32 bytes`
      umks.set(umk.version, key)
    }
    if (!umks.has(doc.primary)) return `primary master key umk-v${doc.primary} is missing`
    const keks = new Map<string, KeyObject>()
    for (const [wallet, record] of Object.entries(doc.wallets)) {
      for (const kek of record.keks) {
        const umkKey = umks.get(kek.umk)
        if (umkKey === undefined) continue // reported as KeyNotFound(missing-master-key) on use
        const key = gcmOpen(
          umkKey,
          unb64(kek.nonce),
          unb64(kek.wrapped),
          kekAad(wallet, kek.version, kek.umk)
        )
        if (key === undefined || key.length !== KEY_BYTES) {
          return `wallet key ${localKeyId(wallet, kek.version)} does not decrypt under umk-v${kek.umk}`
        }
        keks.set(`${wallet}\u0000${kek.version}`, createSecretKey(key))
        key.fill(0)
      }
    }
    const systemUmk = umks.get(doc.system.umk)
    if (systemUmk === undefined)
      return `the system root is wrapped under missing master key umk-v${doc.system.umk}`
    const root = gcmOpen(
      systemUmk,
      unb64(doc.system.nonce),
      unb64(doc.system.wrapped),
      systemAad(doc.system.umk)
    )
    if (root === undefined || root.length !== KEY_BYTES) return "the system root does not decrypt"
    for (const b of this.umks.values()) b.fill(0)
    this.systemRoot.fill(0)
    this.umks = umks
    this.keks = keks
    this.current = new Map()
    this.systemRoot = root
    this.doc = doc
    return undefined
  }

  /** The system root secret (copy). */
  rootSecret(): Redacted.Redacted<Uint8Array> {
    return Redacted.make(new Uint8Array(this.systemRoot))
  }

  private adopt(doc: KeyringDoc): Effect.Effect<void, KeyringWriteFailed> {
    return Effect.suspend(() => {
      const problem = this.hydrate(doc)
      return problem === undefined
        ? Effect.void
        : Effect.fail(
            new KeyringWriteFailed({ path: this.location, reason: `keyring on disk is unusable: ${problem}` })
          )
    })
  }

  /**
   * Run a mutation: under the in-process lock and the storage's cross-process lock, adopt the
   * stored document if another process changed it, build the next document from the current
   * one, write it, and only then make it current.
   */
  private mutate<A>(
    plan: () => { readonly next?: KeyringDoc; readonly result: () => A }
  ): Effect.Effect<A, KeyringWriteFailed> {
    return this.lock.withPermits(1)(
      this.storage.exclusive(
        Effect.gen(this, function* () {
          const stored = yield* this.storage.reload(this.doc.revision)
          if (stored !== undefined) yield* this.adopt(stored)
          const step = plan()
          if (step.next !== undefined) {
            const next = { ...step.next, revision: this.doc.revision + 1 }
            yield* this.storage.write(next)
            yield* this.adopt(next)
          }
          return step.result()
        })
      )
    )
  }

  /** Adopt the stored document if another process changed it (lock-free read). */
  private refresh(): Effect.Effect<void, KeyringWriteFailed> {
    return this.lock.withPermits(1)(
      Effect.flatMap(this.storage.reload(this.doc.revision), (stored) =>
        stored === undefined ? Effect.void : this.adopt(stored)
      )
    )
  }

  private currentKek(wallet: string): Effect.Effect<CurrentKek, KeyringWriteFailed> {
    const existing = this.currentKekSync(wallet)
    if (existing !== undefined) return Effect.succeed(existing)
    return this.mutate(() => {
      const again = this.currentKekSync(wallet)
      if (again !== undefined) return { result: () => again }
      const record = this.doc.wallets[wallet]
      const version = nextKekVersion(record)
      return {
        next: {
          ...this.doc,
          wallets: { ...this.doc.wallets, [wallet]: this.newKek(wallet, version, record) }
        },
        result: () => this.currentKekSync(wallet)!
      }
    })
  }

  private currentKekSync(wallet: string): CurrentKek | undefined {
    const memo = this.current.get(wallet)
    if (memo !== undefined) return memo
    const record = this.doc.wallets[wallet]
    if (record === undefined) return undefined
    const kek = record.keks.find((k) => k.version === record.current)
    if (kek === undefined || kek.umk !== this.doc.primary) return undefined
    const key = this.keks.get(`${wallet}\u0000${kek.version}`)
    if (key === undefined) return undefined
    const current: CurrentKek = {
      version: kek.version,
      key,
      keyId: localKeyId(wallet, kek.version),
      aads: new Map()
    }
    this.current.set(wallet, current)
    return current
  }

  private newKek(wallet: string, version: number, record: WalletRecord | undefined): WalletRecord {
    const umkKey = this.umks.get(this.doc.primary)!
    const kek = freshKey()
    const wrapped = wrapUnder(umkKey, kek, kekAad(wallet, version, this.doc.primary))
    kek.fill(0)
    return {
      ...(record ?? {}),
      current: version,
      keks: [...(record?.keks ?? []), { version, umk: this.doc.primary, ...wrapped, createdAt: now() }]
    }
  }

  private wrapDek(
    context: EncryptionContext,
    kek: { version: number; key: KeyObject },
    dek: Uint8Array,
    aad: Uint8Array = dekAad(context, wrapHeader(kek.version))
  ): Uint8Array {
    // Header, nonce and sealed DEK written in place, into memory of its own (not a slice of
    // Node's pool).
    const out = new Uint8Array(WRAPPED_DEK_BYTES)
    out.set(wrapHeader(kek.version), 0)
    fillRandom(out, WRAP_HEADER, NONCE_BYTES)
    const nonce = out.subarray(WRAP_HEADER, WRAP_HEADER + NONCE_BYTES)
    gcmSealInto(kek.key, nonce, dek, aad, out, WRAP_HEADER + NONCE_BYTES)
    return out
  }

  /** Resolve the KEK a wrapped DEK names, after checking the key id matches the wrap. */
  private kekFor(
    context: EncryptionContext,
    wrapped: Uint8Array,
    keyId: string
  ): Effect.Effect<{ version: number; key: KeyObject }, KeyNotFound | DecryptFailed | KeyringWriteFailed> {
    if (wrapped.length !== WRAPPED_DEK_BYTES || wrapped[0] !== WRAP_FORMAT)
      return Effect.fail(new DecryptFailed())
    const version = Buffer.from(wrapped.buffer, wrapped.byteOffset, wrapped.length).readUInt32BE(1)
    if (keyId !== localKeyId(context.wallet, version)) return Effect.fail(new DecryptFailed())
    const found = this.kekSync(context.wallet, version, keyId)
    if (!(found instanceof KeyNotFound)) return Effect.succeed(found)
    if (found.reason !== "unknown") return Effect.fail(found)
    // Possibly created by another process (e.g. `aap keys rotate`) since we loaded: re-read once.
    return Effect.flatMap(this.refresh(), () => {
      const again = this.kekSync(context.wallet, version, keyId)
      return again instanceof KeyNotFound ? Effect.fail(again) : Effect.succeed(again)
    })
  }

  private kekSync(
    wallet: string,
    version: number,
    keyId: string
  ): { version: number; key: KeyObject } | KeyNotFound {
    const context = { wallet }
    const key = this.keks.get(`${wallet}\u0000${version}`)
    if (key !== undefined) return { version, key }
    const record = this.doc.wallets[context.wallet]
    const kek = record?.keks.find((k) => k.version === version)
    if (kek !== undefined) return new KeyNotFound({ keyId, reason: "missing-master-key" })
    if (record?.shreddedThrough !== undefined && version <= record.shreddedThrough) {
      return new KeyNotFound({ keyId, reason: "shredded" })
    }
    return new KeyNotFound({ keyId, reason: "unknown" })
  }

  private unwrapDek(
    context: EncryptionContext,
    wrapped: Uint8Array,
    kek: { version: number; key: KeyObject }
  ): Effect.Effect<Buffer, DecryptFailed> {
    const header = wrapped.subarray(0, WRAP_HEADER)
    const nonce = wrapped.subarray(WRAP_HEADER, WRAP_HEADER + NONCE_BYTES)
    const sealed = wrapped.subarray(WRAP_HEADER + NONCE_BYTES)
    const dek = gcmOpen(kek.key, nonce, sealed, dekAad(context, header))
    return dek === undefined || dek.length !== KEY_BYTES
      ? Effect.fail(new DecryptFailed())
      : Effect.succeed(dek)
  }

  private dataKey(context: EncryptionContext, kek: CurrentKek): DataKey {
    let aad = kek.aads.get(context.purpose)
    if (aad === undefined) {
      aad = dekAad(context, wrapHeader(kek.version))
      if (kek.aads.size < MAX_MEMO_PURPOSES) kek.aads.set(context.purpose, aad)
    }
    const dek = freshKey() // memory of its own, handed to the caller
    const wrapped = this.wrapDek(context, kek, dek, aad)
    return { plaintext: Redacted.make(dek), wrapped, keyId: kek.keyId }
  }

  generateDataKey(context: EncryptionContext): Effect.Effect<DataKey, KeyProviderError> {
    return Effect.suspend((): Effect.Effect<DataKey, KeyProviderError> => {
      const problem = contextProblem(context)
      if (problem !== undefined) return Effect.fail(problem)
      // Hot path: the wallet's current KEK is in memory — one synchronous step.
      const kek = this.currentKekSync(context.wallet)
      if (kek !== undefined) return Effect.succeed(this.dataKey(context, kek))
      return Effect.map(this.currentKek(context.wallet), (k) => this.dataKey(context, k))
    })
  }

  decryptDataKey(
    context: EncryptionContext,
    wrapped: Uint8Array,
    keyId: string
  ): Effect.Effect<Redacted.Redacted<Uint8Array>, KeyProviderError> {
    return Effect.suspend((): Effect.Effect<Redacted.Redacted<Uint8Array>, KeyProviderError> => {
      const problem = contextProblem(context)
      if (problem !== undefined) return Effect.fail(problem)
      // Hot path: the KEK is in memory — one synchronous step.
      const kek = this.kekForSync(context, wrapped, keyId)
      if (kek instanceof DecryptFailed) return Effect.fail(kek)
      if (kek !== undefined) return this.unwrapToRedacted(context, wrapped, kek)
      return Effect.flatMap(this.kekFor(context, wrapped, keyId), (k) =>
        this.unwrapToRedacted(context, wrapped, k)
      )
    })
  }

  private unwrapToRedacted(
    context: EncryptionContext,
    wrapped: Uint8Array,
    kek: { version: number; key: KeyObject }
  ): Effect.Effect<Redacted.Redacted<Uint8Array>, DecryptFailed> {
    const header = wrapped.subarray(0, WRAP_HEADER)
    const dek = gcmOpen(
      kek.key,
      wrapped.subarray(WRAP_HEADER, WRAP_HEADER + NONCE_BYTES),
      wrapped.subarray(WRAP_HEADER + NONCE_BYTES),
      dekAad(context, header)
    )
    return dek === undefined || dek.length !== KEY_BYTES
      ? Effect.fail(new DecryptFailed())
      : Effect.succeed(Redacted.make(own(dek)))
  }

  /** The KEK a wrap names when it is in memory; `DecryptFailed` on inconsistent input. */
  private kekForSync(
    context: EncryptionContext,
    wrapped: Uint8Array,
    keyId: string
  ): { version: number; key: KeyObject } | DecryptFailed | undefined {
    if (wrapped.length !== WRAPPED_DEK_BYTES || wrapped[0] !== WRAP_FORMAT) return new DecryptFailed()
    const version = ((wrapped[1]! << 24) | (wrapped[2]! << 16) | (wrapped[3]! << 8) | wrapped[4]!) >>> 0
    if (keyId !== localKeyId(context.wallet, version)) return new DecryptFailed()
    const key = this.keks.get(`${context.wallet}\u0000${version}`)
    return key === undefined ? undefined : { version, key }
  }

  rewrap(
    context: EncryptionContext,
    wrapped: Uint8Array,
    keyId: string
  ): Effect.Effect<Rewrapped, KeyProviderError> {
    return Effect.gen(this, function* () {
      yield* checkContext(context)
      const kek = yield* this.kekFor(context, wrapped, keyId)
      const dek = yield* this.unwrapDek(context, wrapped, kek)
      const current = yield* this.currentKek(context.wallet)
      if (current.version === kek.version) {
        dek.fill(0)
        return { wrapped, keyId, rewrapped: false }
      }
      const next = this.wrapDek(context, current, dek)
      dek.fill(0)
      return { wrapped: next, keyId: localKeyId(context.wallet, current.version), rewrapped: true }
    })
  }

  rotate(): Effect.Effect<Description, KeyringWriteFailed> {
    return this.mutate(() => {
      const version = Math.max(...this.doc.umks.map((u) => u.version)) + 1
      const umk = freshKey()
      const createdAt = now()
      const withUmk: KeyringDoc = {
        ...this.doc,
        primary: version,
        umks: [...this.doc.umks, { version, key: b64(umk), createdAt }],
        system: { umk: version, ...wrapUnder(umk, this.systemRoot, systemAad(version)), createdAt }
      }
      // Each wallet gets a new KEK under the new primary; old KEKs stay (decrypt only)
      // until their DEKs are re-wrapped.
      const wallets: Record<string, WalletRecord> = {}
      for (const [wallet, record] of Object.entries(withUmk.wallets)) {
        const kek = freshKey()
        const v = nextKekVersion(record)
        const wrapped = wrapUnder(umk, kek, kekAad(wallet, v, version))
        kek.fill(0)
        wallets[wallet] = {
          ...record,
          current: v,
          keks: [...record.keks, { version: v, umk: version, ...wrapped, createdAt }]
        }
      }
      umk.fill(0)
      return { next: { ...withUmk, wallets }, result: () => this.describeSync() }
    })
  }

  shredWallet(wallet: string): Effect.Effect<ReadonlyArray<string>, KeyringWriteFailed> {
    return this.mutate((): { next?: KeyringDoc; result: () => ReadonlyArray<string> } => {
      const record = this.doc.wallets[wallet]
      if (record === undefined || record.keks.length === 0) return { result: () => [] }
      const removed = record.keks.map((k) => localKeyId(wallet, k.version))
      const through = Math.max(record.shreddedThrough ?? 0, ...record.keks.map((k) => k.version))
      const next: KeyringDoc = {
        ...this.doc,
        wallets: {
          ...this.doc.wallets,
          [wallet]: { current: through, keks: [], shreddedThrough: through, shreddedAt: now() }
        }
      }
      return { next, result: () => removed }
    })
  }

  describeSync(): Description {
    const wallets = Object.values(this.doc.wallets)
    return {
      provider: this.provider,
      location: this.location,
      primaryKeyId: umkAad(this.doc.primary),
      masterKeys: this.doc.umks.map((u) => ({
        keyId: umkAad(u.version),
        primary: u.version === this.doc.primary,
        createdAt: u.createdAt
      })),
      wallets: wallets.filter((w) => w.keks.length > 0).length,
      shreddedWallets: wallets.filter((w) => w.keks.length === 0 && w.shreddedThrough !== undefined).length
    }
  }
}

const nextKekVersion = (record: WalletRecord | undefined): number =>
  Math.max(
    record?.shreddedThrough ?? 0,
    record?.current ?? 0,
    ...(record?.keks ?? []).map((k) => k.version)
  ) + 1
