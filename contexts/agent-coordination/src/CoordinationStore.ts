/**
 * The storage port under every coordination repository: single items addressed by
 * `(pk, sk)`, conditional single-item writes (absent / on a version), two sparse secondary
 * indexes queried by key condition with cursor pagination, and atomic bounded counters.
 * Nothing here scans a table (ADR 0040).
 *
 * Adapters: {@link layerMemory} (tests, one process) and {@link layerDynamoDb} (dynalite in
 * embedded mode and tests, AWS DynamoDB in production). One conformance suite covers both.
 *
 * @since 0.1.0
 */

import type * as LocalStack from "@aap/local-stack"
import { Context, Data, type Effect, Layer, type Option } from "effect"
import type { InvalidCursor, Unavailable } from "./Errors.js"
import * as DynamoStore from "./internal/dynamoStore.js"
import * as MemoryStore from "./internal/memoryStore.js"

/** JSON values; `undefined` members of objects are absent (optional fields). */
export type Json = string | number | boolean | null | ReadonlyArray<Json> | JsonObject
export interface JsonObject {
  readonly [key: string]: Json | undefined
}

/** A secondary-index key of an item. */
export interface IndexKey {
  readonly pk: string
  readonly sk: string
}

/** The two secondary indexes (GSI1, GSI2 in DynamoDB). */
export type IndexName = "byStatus" | "byOwner"

export interface Item {
  readonly pk: string
  readonly sk: string
  /** Incremented by every write of the item; conditional writes compare it. */
  readonly version: number
  /** The domain record (encoded form). */
  readonly data: JsonObject
  /** The item's integrity MAC (hex). */
  readonly mac: string
  readonly byStatus?: IndexKey | undefined
  readonly byOwner?: IndexKey | undefined
  /** Epoch seconds for DynamoDB TTL clean-up in production. Never used for expiry decisions. */
  readonly expireAt?: number | undefined
}

/** How a write is conditioned. */
export type WriteCondition =
  | { readonly _tag: "Absent" }
  | { readonly _tag: "Version"; readonly expected: number }

export const absent: WriteCondition = { _tag: "Absent" }
export const atVersion = (expected: number): WriteCondition => ({ _tag: "Version", expected })

/** A key condition on an index's sort key. Bounds are inclusive; `after` is exclusive. */
export type Range =
  | { readonly _tag: "BeginsWith"; readonly prefix: string }
  | { readonly _tag: "Between"; readonly low: string; readonly high: string }

export interface Query {
  readonly index: IndexName
  readonly pk: string
  readonly range?: Range | undefined
  readonly limit: number
  readonly cursor?: string | undefined
  /**
   * `count`: the page holds no items, only how many matched (DynamoDB `Select: COUNT`): the
   * items are neither sent nor decoded. Default `items`.
   */
  readonly select?: "items" | "count" | undefined
}

export interface Page {
  readonly items: ReadonlyArray<Item>
  /** How many items matched in this page (`items.length`, or the count for `select: "count"`). */
  readonly count: number
  /** Opaque; present when more items may follow. */
  readonly cursor: Option.Option<string>
  /** Items the store read to answer (DynamoDB `ScannedCount`). */
  readonly read: number
}

/** A conditional write's condition did not hold. */
export class ConditionFailed extends Data.TaggedError("ConditionFailed")<{
  readonly pk: string
}> {}

export interface CoordinationStoreShape {
  readonly get: (pk: string, sk: string) => Effect.Effect<Option.Option<Item>, Unavailable>
  readonly put: (item: Item, condition: WriteCondition) => Effect.Effect<void, ConditionFailed | Unavailable>
  readonly query: (query: Query) => Effect.Effect<Page, InvalidCursor | Unavailable>
  /**
   * Atomically adds one to the counter at `(pk, sk)` unless it already reached `limit`.
   * Returns whether the increment happened.
   */
  readonly increment: (
    pk: string,
    sk: string,
    limit: number,
    expireAt: number
  ) => Effect.Effect<boolean, Unavailable>
}

export class CoordinationStore extends Context.Tag("@aap/agent-coordination/CoordinationStore")<
  CoordinationStore,
  CoordinationStoreShape
>() {}

/** In-process adapter: a fresh, empty store per layer build. */
export const layerMemory: Layer.Layer<CoordinationStore> = Layer.effect(CoordinationStore, MemoryStore.make)

/**
 * The coordination table (`<prefix>-coordination`): `PK`/`SK`, GSI1 (`GSI1PK`/`GSI1SK`, the
 * `byStatus` index) and GSI2 (`GSI2PK`/`GSI2SK`, the `byOwner` index), both projecting ALL.
 */
export const tableSpec: LocalStack.DynamoDb.TableSpec = DynamoStore.tableSpec

/**
 * DynamoDB adapter on the shared client of `@aap/local-stack`. Creates the table if it is
 * missing (idempotent) when the layer is built.
 */
/**
 * Production set-up: enable DynamoDB TTL on the `ttl` attribute so ended items are cleaned
 * up. Only clean-up: every expiry decision is made in code with `Clock` (ADR 0040).
 */
export const enableTimeToLive: Effect.Effect<void, Unavailable, LocalStack.DynamoDb.DynamoDb> =
  DynamoStore.enableTimeToLive

export const layerDynamoDb: Layer.Layer<CoordinationStore, Unavailable, LocalStack.DynamoDb.DynamoDb> =
  Layer.effect(CoordinationStore, DynamoStore.make)
