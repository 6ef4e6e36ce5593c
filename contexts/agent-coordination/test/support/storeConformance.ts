import { assert, layer } from "@effect/vitest"
import { Effect, type Layer, Option } from "effect"
import * as Store from "../../src/CoordinationStore.js"

const uid = () => Math.random().toString(36).slice(2, 10)

const item = (pk: string, over: Partial<Store.Item> = {}): Store.Item => ({
  pk,
  sk: "x",
  version: 1,
  data: { s: "v" },
  mac: "0".repeat(64),
  ...over
})

/** The `CoordinationStore` contract, run against every adapter. */
export const conformance = (name: string, adapter: Layer.Layer<Store.CoordinationStore, unknown>) =>
  layer(adapter, { excludeTestServices: true, timeout: "60 seconds" })(
    `CoordinationStore conformance: ${name}`,
    (it) => {
      it.effect("get of a missing item is None", () =>
        Effect.gen(function* () {
          const store = yield* Store.CoordinationStore
          assert.isTrue(Option.isNone(yield* store.get(`missing#${uid()}`, "x")))
        })
      )

      it.effect("round-trips data, index keys and TTL exactly", () =>
        Effect.gen(function* () {
          const store = yield* Store.CoordinationStore
          const pk = `rt#${uid()}`
          const data = {
            s: "text ü",
            n: 42.5,
            zero: 0,
            t: true,
            f: false,
            nil: null,
            list: [1, "two", { three: [3] }],
            nested: { a: { b: "c" } },
            empty: ""
          }
          const written = item(pk, {
            data,
            byStatus: { pk: `s#${pk}`, sk: "2026#1" },
            byOwner: { pk: `o#${pk}`, sk: "a#b" },
            expireAt: 1_900_000_000
          })
          yield* store.put(written, Store.absent)
          const read = Option.getOrThrow(yield* store.get(pk, "x"))
          assert.deepStrictEqual(read, written)
        })
      )

      it.effect("Absent: a second create fails with ConditionFailed and changes nothing", () =>
        Effect.gen(function* () {
          const store = yield* Store.CoordinationStore
          const pk = `abs#${uid()}`
          yield* store.put(item(pk), Store.absent)
          const error = yield* Effect.flip(store.put(item(pk, { data: { s: "other" } }), Store.absent))
          assert.strictEqual(error._tag, "ConditionFailed")
          assert.deepStrictEqual(Option.getOrThrow(yield* store.get(pk, "x")).data, { s: "v" })
        })
      )

      it.effect("Version: only a write at the stored version succeeds", () =>
        Effect.gen(function* () {
          const store = yield* Store.CoordinationStore
          const pk = `ver#${uid()}`
          yield* store.put(item(pk), Store.absent)
          yield* store.put(item(pk, { version: 2, data: { s: "two" } }), Store.atVersion(1))
          const stale = yield* Effect.flip(
            store.put(item(pk, { version: 2, data: { s: "lost" } }), Store.atVersion(1))
          )
          assert.strictEqual(stale._tag, "ConditionFailed")
          const missing = yield* Effect.flip(
            store.put(item(`none#${uid()}`, { version: 2 }), Store.atVersion(1))
          )
          assert.strictEqual(missing._tag, "ConditionFailed")
          assert.deepStrictEqual(Option.getOrThrow(yield* store.get(pk, "x")).data, { s: "two" })
        })
      )

      it.effect("concurrent writes at one version: exactly one wins", () =>
        Effect.gen(function* () {
          const store = yield* Store.CoordinationStore
          const pk = `race#${uid()}`
          yield* store.put(item(pk), Store.absent)
          const results = yield* Effect.forEach(
            Array.from({ length: 20 }, (_, i) => i),
            (i) =>
              Effect.either(store.put(item(pk, { version: 2, data: { s: `w${i}` } }), Store.atVersion(1))),
            { concurrency: "unbounded" }
          )
          assert.strictEqual(results.filter((r) => r._tag === "Right").length, 1)
        })
      )

      it.effect("queries an index by partition and range, in sort-key order, with cursor pages", () =>
        Effect.gen(function* () {
          const store = yield* Store.CoordinationStore
          const part = `q#${uid()}`
          const keys = ["a#3", "a#1", "b#1", "a#2", "c#9", "a#4"]
          yield* Effect.forEach(keys, (sk, i) =>
            store.put(item(`${part}#${i}`, { byStatus: { pk: part, sk } }), Store.absent)
          )
          // an item in another partition and one without an index key are never returned
          yield* store.put(item(`${part}#other`, { byStatus: { pk: `${part}-x`, sk: "a#0" } }), Store.absent)
          yield* store.put(item(`${part}#noindex`), Store.absent)

          const all = yield* store.query({ index: "byStatus", pk: part, limit: 100 })
          assert.deepStrictEqual(
            all.items.map((i) => i.byStatus?.sk),
            ["a#1", "a#2", "a#3", "a#4", "b#1", "c#9"]
          )
          const prefix = yield* store.query({
            index: "byStatus",
            pk: part,
            range: { _tag: "BeginsWith", prefix: "a#" },
            limit: 100
          })
          assert.strictEqual(prefix.items.length, 4)
          assert.strictEqual(prefix.count, 4)
          assert.strictEqual(prefix.read, 4)
          // select: count — the same matches, counted, no items; pages and cursors as for items
          const counted = yield* store.query({
            index: "byStatus",
            pk: part,
            range: { _tag: "BeginsWith", prefix: "a#" },
            limit: 100,
            select: "count"
          })
          assert.deepStrictEqual(counted.items, [])
          assert.strictEqual(counted.count, 4)
          assert.isTrue(Option.isNone(counted.cursor))
          let countedAll = 0
          let countCursor: string | undefined
          let countPages = 0
          do {
            const page = yield* store.query({
              index: "byStatus",
              pk: part,
              limit: 4,
              cursor: countCursor,
              select: "count"
            })
            assert.deepStrictEqual(page.items, [])
            countedAll += page.count
            countCursor = Option.getOrUndefined(page.cursor)
            countPages++
          } while (countCursor !== undefined && countPages < 10)
          assert.strictEqual(countedAll, 6)
          assert.strictEqual(countPages, 2)
          const between = yield* store.query({
            index: "byStatus",
            pk: part,
            range: { _tag: "Between", low: "a#2", high: "b#1" },
            limit: 100
          })
          assert.deepStrictEqual(
            between.items.map((i) => i.byStatus?.sk),
            ["a#2", "a#3", "a#4", "b#1"]
          )

          // pages of 2 cover everything once
          const seen: Array<string> = []
          let cursor: string | undefined
          let pages = 0
          do {
            const page = yield* store.query({ index: "byStatus", pk: part, limit: 2, cursor })
            seen.push(...page.items.map((i) => i.byStatus!.sk))
            cursor = Option.getOrUndefined(page.cursor)
            pages++
          } while (cursor !== undefined && pages < 10)
          assert.deepStrictEqual(seen, ["a#1", "a#2", "a#3", "a#4", "b#1", "c#9"])

          // byOwner is independent of byStatus
          const owner = yield* store.query({ index: "byOwner", pk: part, limit: 10 })
          assert.strictEqual(owner.items.length, 0)
        })
      )

      it.effect("a cursor of another query, or garbage, is InvalidCursor", () =>
        Effect.gen(function* () {
          const store = yield* Store.CoordinationStore
          const part = `c#${uid()}`
          yield* Effect.forEach([1, 2, 3], (i) =>
            store.put(item(`${part}#${i}`, { byOwner: { pk: part, sk: `k#${i}` } }), Store.absent)
          )
          const page = yield* store.query({ index: "byOwner", pk: part, limit: 1 })
          const cursor = Option.getOrThrow(page.cursor)
          for (const q of [
            { index: "byOwner" as const, pk: `${part}-other`, cursor },
            { index: "byStatus" as const, pk: part, cursor },
            { index: "byOwner" as const, pk: part, cursor: "not a cursor!" },
            { index: "byOwner" as const, pk: part, cursor: Buffer.from("{}").toString("base64url") }
          ]) {
            const error = yield* Effect.flip(store.query({ ...q, limit: 1 }))
            assert.strictEqual(error._tag, "InvalidCursor")
          }
        })
      )

      it.effect("increment takes slots atomically up to the limit", () =>
        Effect.gen(function* () {
          const store = yield* Store.CoordinationStore
          const pk = `ctr#${uid()}`
          const results = yield* Effect.forEach(
            Array.from({ length: 12 }, () => 0),
            () => store.increment(pk, "w1", 5, 1_900_000_000),
            { concurrency: "unbounded" }
          )
          assert.strictEqual(results.filter(Boolean).length, 5)
          assert.isTrue(yield* store.increment(pk, "w2", 5, 1_900_000_000))
        })
      )
    }
  )
