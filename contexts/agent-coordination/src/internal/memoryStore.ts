import { Effect, Option } from "effect"
import type { CoordinationStoreShape, IndexKey, Item, Query, Range } from "../CoordinationStore.js"
import { ConditionFailed } from "../CoordinationStore.js"
import * as Cursor from "./cursor.js"

const keyOf = (pk: string, sk: string) => `${pk}\u0000${sk}`

const inRange = (sk: string, range: Range | undefined): boolean => {
  if (range === undefined) return true
  switch (range._tag) {
    case "BeginsWith":
      return sk.startsWith(range.prefix)
    case "Between":
      return sk >= range.low && sk <= range.high
  }
}

const compare = (a: readonly string[], b: readonly string[]): number => {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ?? ""
    const y = b[i] ?? ""
    if (x !== y) return x < y ? -1 : 1
  }
  return 0
}

const clone = (item: Item): Item => structuredClone(item)

/** A fresh in-memory store. Writes are atomic because fibers run one at a time. */
export const make: Effect.Effect<CoordinationStoreShape> = Effect.sync(() => {
  const items = new Map<string, Item>()
  const counters = new Map<string, number>()

  const query = (q: Query) =>
    Effect.gen(function* () {
      const start = q.cursor === undefined ? undefined : yield* Cursor.decode(q.cursor, q.index, q.pk)
      const order = (item: Item, key: IndexKey) => [key.sk, item.pk, item.sk]
      const matching = [...items.values()]
        .flatMap((item) => {
          const key = item[q.index]
          return key !== undefined && key.pk === q.pk && inRange(key.sk, q.range)
            ? [{ item, at: order(item, key) }]
            : []
        })
        .sort((a, b) => compare(a.at, b.at))
      const after =
        start === undefined
          ? matching
          : matching.filter((m) => compare(m.at, [start.ix ?? "", start.pk ?? "", start.sk ?? ""]) > 0)
      const page = after.slice(0, q.limit)
      const last = page[page.length - 1]
      const more = after.length > q.limit && last !== undefined
      return {
        items: q.select === "count" ? [] : page.map((m) => clone(m.item)),
        count: page.length,
        cursor: more
          ? Option.some(
              Cursor.encode({ i: q.index, p: q.pk, k: { ix: last.at[0]!, pk: last.at[1]!, sk: last.at[2]! } })
            )
          : Option.none(),
        read: page.length
      }
    })

  return {
    get: (pk, sk) => Effect.sync(() => Option.map(Option.fromNullable(items.get(keyOf(pk, sk))), clone)),
    put: (item, condition) =>
      Effect.suspend(() => {
        const key = keyOf(item.pk, item.sk)
        const existing = items.get(key)
        const ok =
          condition._tag === "Absent" ? existing === undefined : existing?.version === condition.expected
        if (!ok) return Effect.fail(new ConditionFailed({ pk: item.pk }))
        items.set(key, clone(item))
        return Effect.void
      }),
    query,
    increment: (pk, sk, limit) =>
      Effect.sync(() => {
        const key = keyOf(pk, sk)
        const n = counters.get(key) ?? 0
        if (n >= limit) return false
        counters.set(key, n + 1)
        return true
      })
  }
})
