/**
 * Tokens, link codes and the bootstrap marker in the coordination store (ADR 0041). Only
 * hashes are stored; every item carries an integrity MAC checked on read (ADR 0042).
 *
 * Keys:
 * - token: `PK=token#<sha256>`, `SK=token`; `byOwner` (GSI2) `agent#<id>` / `operator#<id>`,
 *   `token#<createdAt>#<fingerprint>` (a principal's tokens, for revocation)
 * - link code: `PK=link-code#<sha256>`, `SK=link-code`
 * - bootstrap marker: `PK=bootstrap`, `SK=operator`
 *
 * @since 0.1.0
 */
import type { SystemKeys } from "@aap/key-custody"
import { Context, DateTime, Effect, Layer, Option, Schema } from "effect"
import * as Store from "./CoordinationStore.js"
import { Conflict, Tampered, type Unavailable } from "./Errors.js"
import * as HighWater from "./internal/highWater.js"
import * as Integrity from "./internal/integrity.js"
import { PrincipalType } from "./Principal.js"

export const TokenRecord = Schema.Struct({
  hash: Schema.String,
  type: PrincipalType,
  principal: Schema.String,
  fingerprint: Schema.String,
  createdAt: Schema.DateTimeUtc,
  createdBy: Schema.optional(Schema.String),
  revokedAt: Schema.optional(Schema.DateTimeUtc),
  revokedBy: Schema.optional(Schema.String),
  version: Schema.Int
})
export type TokenRecord = typeof TokenRecord.Type

export const LinkCodeRecord = Schema.Struct({
  hash: Schema.String,
  agent: Schema.String,
  createdBy: Schema.String,
  createdAt: Schema.DateTimeUtc,
  expiresAt: Schema.DateTimeUtc,
  redeemedAt: Schema.optional(Schema.DateTimeUtc),
  version: Schema.Int
})
export type LinkCodeRecord = typeof LinkCodeRecord.Type

export const BootstrapRecord = Schema.Struct({
  operator: Schema.String,
  tokenHash: Schema.String,
  createdAt: Schema.DateTimeUtc,
  version: Schema.Int
})
export type BootstrapRecord = typeof BootstrapRecord.Type

export interface IdentityRepositoryShape {
  /** Stores a new token; Conflict if the hash exists. */
  readonly createToken: (record: TokenRecord) => Effect.Effect<void, Conflict | Unavailable>
  readonly getToken: (hash: string) => Effect.Effect<Option.Option<TokenRecord>, Tampered | Unavailable>
  readonly saveToken: (
    record: TokenRecord,
    expectedVersion: number
  ) => Effect.Effect<void, Conflict | Unavailable>
  /** A principal's tokens (revoked ones included), oldest first. */
  readonly listTokens: (
    type: PrincipalType,
    principal: string
  ) => Effect.Effect<ReadonlyArray<TokenRecord>, Tampered | Unavailable>
  readonly createLinkCode: (record: LinkCodeRecord) => Effect.Effect<void, Conflict | Unavailable>
  readonly getLinkCode: (hash: string) => Effect.Effect<Option.Option<LinkCodeRecord>, Tampered | Unavailable>
  readonly saveLinkCode: (
    record: LinkCodeRecord,
    expectedVersion: number
  ) => Effect.Effect<void, Conflict | Unavailable>
  readonly getBootstrap: Effect.Effect<Option.Option<BootstrapRecord>, Tampered | Unavailable>
  /** Creates the marker (`expectedVersion` undefined) or replaces it at that version. */
  readonly saveBootstrap: (
    record: BootstrapRecord,
    expectedVersion: number | undefined
  ) => Effect.Effect<void, Conflict | Unavailable>
  /**
   * Records that the token with `fingerprint` was revoked (known from elsewhere: the audit log,
   * at start): a consistent read of it that is not revoked is then a rollback, `Tampered`.
   */
  readonly rememberRevoked: (fingerprint: string) => void
}

export class IdentityRepository extends Context.Tag("@aap/agent-coordination/IdentityRepository")<
  IdentityRepository,
  IdentityRepositoryShape
>() {}

const iso = (d: DateTime.Utc): string => DateTime.formatIso(d)
const seconds = (d: DateTime.Utc): number => Math.floor(DateTime.toEpochMillis(d) / 1000)

export const tokenPk = (hash: string): string => `token#${hash}`
export const linkCodePk = (hash: string): string => `link-code#${hash}`
export const ownerPartition = (type: PrincipalType, id: string): string => `${type}#${id}`

interface Kind<A extends { readonly version: number }, I> {
  readonly kind: "token" | "link-code" | "bootstrap"
  readonly schema: Schema.Schema<A, I>
  readonly keys: (a: A) => Omit<Store.Item, "mac" | "data" | "version">
  /** Until when (epoch ms) a rollback of this record matters (ADR 0044). */
  readonly until: (a: A) => number
}

const tokenKind: Kind<TokenRecord, typeof TokenRecord.Encoded> = {
  kind: "token",
  schema: TokenRecord,
  keys: (t) => ({
    pk: tokenPk(t.hash),
    sk: "token",
    byOwner: { pk: ownerPartition(t.type, t.principal), sk: `token#${iso(t.createdAt)}#${t.fingerprint}` }
  }),
  // a revoked token stays revoked: no deadline
  until: () => Number.POSITIVE_INFINITY
}

const linkCodeKind: Kind<LinkCodeRecord, typeof LinkCodeRecord.Encoded> = {
  kind: "link-code",
  schema: LinkCodeRecord,
  keys: (c) => ({ pk: linkCodePk(c.hash), sk: "link-code", expireAt: seconds(c.expiresAt) + 7 * 24 * 3600 }),
  until: (c) => DateTime.toEpochMillis(c.expiresAt)
}

const bootstrapKind: Kind<BootstrapRecord, typeof BootstrapRecord.Encoded> = {
  kind: "bootstrap",
  schema: BootstrapRecord,
  keys: () => ({ pk: "bootstrap", sk: "operator" }),
  until: () => Number.POSITIVE_INFINITY
}

const conflict = (what: string) => () =>
  Effect.fail(
    new Conflict({ message: `the ${what} was changed by another request`, reason: "concurrent-update" })
  )

export const make: Effect.Effect<
  IdentityRepositoryShape,
  never,
  Store.CoordinationStore | SystemKeys.SystemKeys
> = Effect.gen(function* () {
  const store = yield* Store.CoordinationStore
  const context = yield* Effect.context<SystemKeys.SystemKeys>()
  // the newest version of each record this process wrote or read: an older, validly MACed
  // copy put back in the table is a rollback (ADR 0044)
  const seen = HighWater.make({ maxEntries: 200_000 })
  // fingerprints of tokens known to be revoked (ADR 0044, seeded from the audit log at start);
  // bounded like the marks, the oldest dropped first
  const revokedFingerprints = new Set<string>()
  const MAX_REVOKED = 200_000

  const rolledBack = (pk: string, kind: Tampered["kind"]) =>
    new Tampered({
      message: `stored item ${pk} is older than a version this broker has seen (rolled back)`,
      kind
    })

  const sign = <A extends { readonly version: number }, I>(k: Kind<A, I>, a: A) =>
    Integrity.sign(k.kind, {
      ...k.keys(a),
      version: a.version,
      data: Schema.encodeSync(k.schema)(a) as Store.JsonObject
    }).pipe(Effect.provide(context))

  // `consistent`: from a strongly consistent GetItem; index queries (eventually consistent on
  // DynamoDB) are not held against the high-water mark
  const read = <A extends { readonly version: number }, I>(
    k: Kind<A, I>,
    item: Store.Item,
    consistent = false
  ): Effect.Effect<A, Tampered> =>
    Effect.gen(function* () {
      const bad = new Tampered({ message: `stored item ${item.pk} failed its integrity check`, kind: k.kind })
      const ok = yield* Integrity.verify(k.kind, item).pipe(Effect.provide(context))
      if (!ok) return yield* bad
      const decoded = Schema.decodeUnknownOption(k.schema)(item.data)
      if (
        Option.isNone(decoded) ||
        decoded.value.version !== item.version ||
        k.keys(decoded.value).pk !== item.pk
      ) {
        return yield* bad
      }
      if (consistent && seen.isRollback(item.pk, item.version)) return yield* rolledBack(item.pk, k.kind)
      seen.note(item.pk, item.version, k.until(decoded.value))
      return decoded.value
    })

  const get = <A extends { readonly version: number }, I>(k: Kind<A, I>, pk: string, sk: string) =>
    Effect.flatMap(store.get(pk, sk), (item) =>
      Option.match(item, { onNone: () => Effect.succeedNone, onSome: (i) => Effect.asSome(read(k, i, true)) })
    )

  const put = <A extends { readonly version: number }, I>(
    k: Kind<A, I>,
    a: A,
    condition: Store.WriteCondition
  ): Effect.Effect<void, Conflict | Unavailable> =>
    Effect.flatMap(sign(k, a), (item) =>
      Effect.map(store.put(item, condition), () => seen.note(item.pk, item.version, k.until(a)))
    ).pipe(Effect.catchTag("ConditionFailed", conflict(k.kind)))

  return {
    createToken: (t) => put(tokenKind, t, Store.absent),
    // a live token whose revocation is on record (rememberRevoked) was put back: a rollback
    getToken: (hash) =>
      Effect.flatMap(get(tokenKind, tokenPk(hash), "token"), (token) =>
        Option.isSome(token) &&
        token.value.revokedAt === undefined &&
        revokedFingerprints.has(token.value.fingerprint)
          ? Effect.fail(rolledBack(tokenPk(hash), tokenKind.kind))
          : Effect.succeed(token)
      ),
    saveToken: (t, v) => put(tokenKind, t, Store.atVersion(v)),
    rememberRevoked: (fingerprint) => {
      if (revokedFingerprints.size >= MAX_REVOKED) {
        const oldest = revokedFingerprints.values().next()
        if (!oldest.done) revokedFingerprints.delete(oldest.value)
      }
      revokedFingerprints.add(fingerprint)
    },
    listTokens: (type, principal) =>
      Effect.gen(function* () {
        const out: Array<TokenRecord> = []
        let cursor: string | undefined
        do {
          const page = yield* store.query({
            index: "byOwner",
            pk: ownerPartition(type, principal),
            range: { _tag: "BeginsWith", prefix: "token#" },
            limit: 100,
            cursor
          })
          out.push(...(yield* Effect.forEach(page.items, (i) => read(tokenKind, i))))
          cursor = Option.getOrUndefined(page.cursor)
        } while (cursor !== undefined)
        return out
      }).pipe(Effect.catchTag("InvalidCursor", (e) => Effect.die(e))),
    createLinkCode: (c) => put(linkCodeKind, c, Store.absent),
    getLinkCode: (hash) => get(linkCodeKind, linkCodePk(hash), "link-code"),
    saveLinkCode: (c, v) => put(linkCodeKind, c, Store.atVersion(v)),
    getBootstrap: get(bootstrapKind, "bootstrap", "operator"),
    saveBootstrap: (b, v) => put(bootstrapKind, b, v === undefined ? Store.absent : Store.atVersion(v))
  }
})

/** The repository over whichever `CoordinationStore` is provided. */
export const layer: Layer.Layer<IdentityRepository, never, Store.CoordinationStore | SystemKeys.SystemKeys> =
  Layer.effect(IdentityRepository, make)
