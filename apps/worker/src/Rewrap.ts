/**
 * Re-wrap after key rotation (DESIGN §6, §12): moves every wrapped DEK to the primary master
 * key version without touching the content it protects (`KeyProvider.rewrap`).
 *
 * - A pass belongs to one primary key id. Its progress marker (`rewrap/pass`) holds the
 *   primary, the cursor after the last completed page, and counts; a killed run resumes from
 *   that cursor, and a rotation during a pass starts a new pass for the new primary.
 * - Each DEK is replaced with a conditional write on its previous key id
 *   (`WrappedDeks.replace`), so a DEK rewritten concurrently (a new secret version, another
 *   worker) is never clobbered; a DEK already under the current key comes back from
 *   `rewrap` unchanged and is not written, so a page redone after a kill costs no writes.
 * - When the last page is done the marker is set `done` (conditional on its version: one
 *   winner) and the winner audits `key.rewrapped` once for the pass.
 *
 * The DEK store is this module's own port ({@link WrappedDeks}): the vault has no operation to
 * page through its envelopes or replace a wrap. {@link layerVaultTable} implements it on the
 * vault's table through its public spec (`SecretStore.tableSpec`) and the envelope attributes
 * key-custody documents (`wrapped_dek` B, `key_id` S; `Envelope.toAttributes`); the content
 * and its AAD are never touched. {@link layerMemoryDeks} serves tests.
 *
 * @since 0.1.0
 */
import { AuditLog } from "@aap/audit"
import { type KeyCustodyError, KeyProvider } from "@aap/key-custody"
import { DynamoDb } from "@aap/local-stack"
import { SecretStore } from "@aap/vault"
import { type AttributeValue, ScanCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb"
import { Context, Data, Effect, Layer, Option } from "effect"
import * as Progress from "./Progress.js"
import { WorkerMetrics } from "./WorkerMetrics.js"

export interface WrappedDek {
  /** Stable address of the DEK's owner (e.g. `wallet#codex/secret#api-key#v000000001`). */
  readonly id: string
  readonly context: KeyProvider.EncryptionContext
  readonly wrapped: Uint8Array
  readonly keyId: string
}

export class DekStoreError extends Data.TaggedError("DekStoreError")<{ readonly message: string }> {}

export interface WrappedDeksShape {
  /** DEKs in a stable order, after `cursor` (exclusive), at most `limit`. */
  readonly page: (
    cursor: Option.Option<string>,
    limit: number
  ) => Effect.Effect<
    { readonly items: ReadonlyArray<WrappedDek>; readonly next: Option.Option<string> },
    DekStoreError
  >
  /** Replace the wrap if the stored key id is still `expectedKeyId`; `false` otherwise. */
  readonly replace: (
    id: string,
    expectedKeyId: string,
    wrapped: Uint8Array,
    keyId: string
  ) => Effect.Effect<boolean, DekStoreError>
}

export class WrappedDeks extends Context.Tag("@aap/worker/WrappedDeks")<WrappedDeks, WrappedDeksShape>() {}

export interface Options {
  /** DEKs per page (one progress write per page). Default 100. */
  readonly pageSize?: number | undefined
  /** Stop after this many pages in one run (the next run resumes). Default: no limit. */
  readonly maxPages?: number | undefined
}

export interface Result {
  readonly primaryKeyId: string
  /** DEKs moved by this run. */
  readonly moved: number
  /** DEKs looked at by this run. */
  readonly seen: number
  /** The pass is complete. */
  readonly done: boolean
  /** Totals of the pass so far (across resumed runs). */
  readonly passMoved: number
  readonly passSeen: number
}

const JOB = "rewrap"
const KEY = "pass"

interface Pass {
  readonly primary: string
  readonly cursor: string | null
  readonly done: boolean
  readonly moved: number
  readonly seen: number
}

const readPass = (v: Progress.Value): Option.Option<Pass> =>
  typeof v.primary === "string" &&
  (typeof v.cursor === "string" || v.cursor === null) &&
  typeof v.done === "boolean" &&
  typeof v.moved === "number" &&
  typeof v.seen === "number"
    ? Option.some({ primary: v.primary, cursor: v.cursor, done: v.done, moved: v.moved, seen: v.seen })
    : Option.none()

export const run = (
  options: Options = {}
): Effect.Effect<
  Result,
  DekStoreError | KeyCustodyError.KeyProviderError | Progress.ProgressError,
  WrappedDeks | KeyProvider.KeyProvider | Progress.Progress | AuditLog.AuditLog | WorkerMetrics
> =>
  Effect.gen(function* () {
    const deks = yield* WrappedDeks
    const provider = yield* KeyProvider.KeyProvider
    const progress = yield* Progress.Progress
    const metrics = yield* WorkerMetrics
    const audit = yield* AuditLog.AuditLog
    const primary = (yield* provider.describe()).primaryKeyId
    const pageSize = Math.max(1, options.pageSize ?? 100)

    const stored = yield* progress.get(JOB, KEY)
    let version = Option.map(stored, (e) => e.version)
    const current = Option.flatMap(stored, (e) => readPass(e.value))
    let pass: Pass = Option.match(current, {
      onNone: () => ({ primary, cursor: null, done: false, moved: 0, seen: 0 }),
      onSome: (p) => (p.primary === primary ? p : { primary, cursor: null, done: false, moved: 0, seen: 0 })
    })
    let moved = 0
    let seen = 0
    const result = (): Result => ({
      primaryKeyId: primary,
      moved,
      seen,
      done: pass.done,
      passMoved: pass.moved,
      passSeen: pass.seen
    })
    if (pass.done) return result()

    /** Conditional write of the marker; `false` when another worker moved it first. */
    const save = (next: Pass) =>
      Effect.gen(function* () {
        const ok = yield* progress.put(JOB, KEY, { ...next }, version)
        if (ok) {
          version = Option.some(Option.getOrElse(version, () => 0) + 1)
          pass = next
        }
        return ok
      })

    let pages = 0
    while (options.maxPages === undefined || pages < options.maxPages) {
      const page = yield* deks.page(Option.fromNullable(pass.cursor), pageSize)
      let pageMoved = 0
      let stale = 0
      for (const dek of page.items) {
        seen++
        // Key ids name the wrapping key (a wallet KEK version locally, the KMS key in KMS
        // mode), not the master key version, so only the provider can say whether a DEK is
        // current: `rewrap` answers `rewrapped: false` without writing anything if it is.
        const r = yield* provider.rewrap(dek.context, dek.wrapped, dek.keyId)
        if (!r.rewrapped) continue
        stale++
        if (yield* deks.replace(dek.id, dek.keyId, r.wrapped, r.keyId)) pageMoved++
      }
      moved += pageMoved
      pages++
      yield* metrics.inc("aap_worker_rewrap_total", undefined, pageMoved)
      yield* metrics.set("aap_worker_rewrap_remaining", Math.max(0, stale - pageMoved))
      const next: Pass = {
        primary,
        cursor: Option.getOrNull(page.next),
        done: Option.isNone(page.next),
        moved: pass.moved + pageMoved,
        seen: pass.seen + page.items.length
      }
      if (!(yield* save(next))) {
        // Another worker is on the same pass: leave it the rest.
        yield* Effect.logInfo("another worker advanced the re-wrap pass; stopping")
        return result()
      }
      yield* Effect.logInfo("re-wrap progress").pipe(
        Effect.annotateLogs({ primary, seen: pass.seen, moved: pass.moved, done: pass.done })
      )
      if (pass.done) {
        yield* audit
          .append({
            actor: { type: "system", id: "worker" },
            action: "key.rewrapped",
            outcome: "success",
            details: { primaryKeyId: primary, deks: pass.seen, moved: pass.moved }
          })
          .pipe(
            Effect.catchAll((e) => Effect.logError("audit append failed after a re-wrap pass", e.message))
          )
        break
      }
    }
    return result()
  }).pipe(Effect.withSpan("Rewrap.run"))

/** DEKs in memory, ordered by id (tests, examples). */
export const layerMemoryDeks = (initial: ReadonlyArray<WrappedDek>): Layer.Layer<WrappedDeks | MemoryDeks> =>
  Layer.effectContext(
    Effect.sync(() => {
      const items = new Map(initial.map((d) => [d.id, d] as const))
      const failAfter = { remaining: Number.POSITIVE_INFINITY }
      const deks = WrappedDeks.of({
        page: (cursor, limit) =>
          Effect.sync(() => {
            const ids = [...items.keys()].sort()
            const start = Option.match(cursor, {
              onNone: () => 0,
              onSome: (c) => ids.findIndex((id) => id > c)
            })
            const slice = start < 0 ? [] : ids.slice(start, start + limit)
            const last = slice[slice.length - 1]
            const more = start >= 0 && start + limit < ids.length
            return {
              items: slice.map((id) => items.get(id)).filter((d): d is WrappedDek => d !== undefined),
              next: more && last !== undefined ? Option.some(last) : Option.none()
            }
          }),
        replace: (id, expectedKeyId, wrapped, keyId) =>
          Effect.suspend(() => {
            if (failAfter.remaining <= 0)
              return Effect.fail(new DekStoreError({ message: "store unavailable" }))
            failAfter.remaining--
            const current = items.get(id)
            if (current === undefined || current.keyId !== expectedKeyId) return Effect.succeed(false)
            items.set(id, { ...current, wrapped, keyId })
            return Effect.succeed(true)
          })
      })
      return Context.make(WrappedDeks, deks).pipe(
        Context.add(MemoryDeks, {
          all: Effect.sync(() => [...items.values()]),
          failAfter: (n) =>
            Effect.sync(() => {
              failAfter.remaining = n
            })
        })
      )
    })
  )

/** Control of {@link layerMemoryDeks}: read the DEKs, make writes fail after `n` more. */
export class MemoryDeks extends Context.Tag("@aap/worker/Rewrap/MemoryDeks")<
  MemoryDeks,
  {
    readonly all: Effect.Effect<ReadonlyArray<WrappedDek>>
    readonly failAfter: (n: number) => Effect.Effect<void>
  }
>() {}

const SEP = "\u0000"

/**
 * Every live version's envelope in the vault table (`<prefix>-vault`), paged with a Scan — a
 * full pass is what a re-wrap is — projecting only keys, wallet and the wrap; tombstones have
 * no envelope and are skipped. `replace` is an UpdateItem of `wrapped_dek` and `key_id`
 * conditional on the old `key_id`.
 */
export const layerVaultTable: Layer.Layer<WrappedDeks, never, DynamoDb.DynamoDb> = Layer.effect(
  WrappedDeks,
  Effect.gen(function* () {
    const ddb = yield* DynamoDb.DynamoDb
    const table = ddb.tables[SecretStore.tableSpec.table]
    const fail = (e: { readonly _tag: string }) =>
      new DekStoreError({ message: `vault table unavailable (${e._tag})` })
    return WrappedDeks.of({
      page: (cursor, limit) =>
        Effect.gen(function* () {
          const start = Option.map(cursor, (c) => {
            const [pk, sk] = c.split(SEP)
            return { PK: { S: pk ?? "" }, SK: { S: sk ?? "" } } satisfies Record<string, AttributeValue>
          })
          const out = yield* DynamoDb.use("Scan", (client, signal) =>
            client.send(
              new ScanCommand({
                TableName: table,
                Limit: limit,
                ConsistentRead: true,
                ProjectionExpression: "PK, SK, wallet, wrapped_dek, key_id",
                ...(Option.isSome(start) ? { ExclusiveStartKey: start.value } : {})
              }),
              { abortSignal: signal }
            )
          ).pipe(Effect.mapError(fail), Effect.provideService(DynamoDb.DynamoDb, ddb))
          const items: Array<WrappedDek> = []
          for (const item of out.Items ?? []) {
            const pk = item.PK?.S
            const sk = item.SK?.S
            const wallet = item.wallet?.S
            const wrapped = item.wrapped_dek?.B
            const keyId = item.key_id?.S
            if (
              pk === undefined ||
              sk === undefined ||
              wallet === undefined ||
              wrapped === undefined ||
              keyId === undefined
            )
              continue
            items.push({
              id: `${pk}${SEP}${sk}`,
              context: { wallet, purpose: KeyProvider.VAULT_PURPOSE },
              wrapped,
              keyId
            })
          }
          const last = out.LastEvaluatedKey
          return {
            items,
            next:
              last?.PK?.S === undefined || last.SK?.S === undefined
                ? Option.none()
                : Option.some(`${last.PK.S}${SEP}${last.SK.S}`)
          }
        }),
      replace: (id, expectedKeyId, wrapped, keyId) => {
        const [pk, sk] = id.split(SEP)
        return DynamoDb.use("UpdateItem", (client, signal) =>
          client.send(
            new UpdateItemCommand({
              TableName: table,
              Key: { PK: { S: pk ?? "" }, SK: { S: sk ?? "" } },
              UpdateExpression: "SET wrapped_dek = :w, key_id = :k",
              ConditionExpression: "key_id = :old",
              ExpressionAttributeValues: {
                ":w": { B: wrapped },
                ":k": { S: keyId },
                ":old": { S: expectedKeyId }
              }
            }),
            { abortSignal: signal }
          )
        ).pipe(
          Effect.as(true),
          Effect.catchTag("ConditionFailed", () => Effect.succeed(false)),
          Effect.mapError(fail),
          Effect.provideService(DynamoDb.DynamoDb, ddb)
        )
      }
    })
  })
)
