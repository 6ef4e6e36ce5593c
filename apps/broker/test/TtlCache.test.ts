/**
 * The read-through loader of the hot-path caches (ADR 0051, 0055): one store read per key at a
 * time, nothing cached across an eviction, callers independent of each other.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber } from "effect"
import { makeLoader, makeTtlCache } from "../src/internal/ttlCache.js"

/** A load that counts its runs and finishes when `gate` is opened. */
const gated = <A, E = never>(gate: Deferred.Deferred<A, E>) => {
  let runs = 0
  const load = Effect.suspend(() => {
    runs++
    return Deferred.await(gate)
  })
  return { load, runs: () => runs }
}

/** A 60 s cache of 10 entries and its loader. */
const fresh = () => {
  const cache = makeTtlCache<string, string>({ ttlMs: 60_000, maxEntries: 10 })
  return { cache, load: makeLoader<string, string, never>(cache) }
}

describe("makeLoader", () => {
  it.effect("concurrent misses of one key share one read; the value is cached", () =>
    Effect.gen(function* () {
      const { load } = fresh()
      const gate = yield* Deferred.make<string>()
      const g = gated(gate)
      const fibers = yield* Effect.forEach([1, 2, 3, 4], () => Effect.fork(load("k", g.load)))
      yield* Effect.yieldNow()
      yield* Deferred.succeed(gate, "v")
      const values = yield* Effect.forEach(fibers, Fiber.join)
      assert.deepStrictEqual(values, ["v", "v", "v", "v"])
      assert.strictEqual(g.runs(), 1)
      assert.strictEqual(yield* load("k", Effect.succeed("other")), "v")
    })
  )

  it.effect("a failure is shared by the callers waiting for it and not cached", () =>
    Effect.gen(function* () {
      const cache = makeTtlCache<string, string>({ ttlMs: 60_000, maxEntries: 10 })
      const load = makeLoader<string, string, string>(cache)
      const gate = yield* Deferred.make<string, string>()
      const g = gated(gate)
      const fibers = yield* Effect.forEach([1, 2], () => Effect.fork(load("k", g.load)))
      yield* Effect.yieldNow()
      yield* Deferred.fail(gate, "down")
      for (const f of fibers) assert.deepStrictEqual(yield* Fiber.await(f), Exit.fail("down"))
      assert.strictEqual(g.runs(), 1)
      assert.strictEqual(yield* load("k", Effect.succeed("fresh")), "fresh")
    })
  )

  it.effect("after an eviction a caller reads again, and the earlier read is not cached", () =>
    Effect.gen(function* () {
      const { cache, load } = fresh()
      const before = yield* Deferred.make<string>()
      const early = yield* Effect.fork(load("k", Deferred.await(before)))
      yield* Effect.yieldNow()
      cache.delete("k") // e.g. the session was revoked through this broker
      const late = yield* load("k", Effect.succeed("revoked"))
      assert.strictEqual(late, "revoked", "the caller after the eviction did not join the older read")
      yield* Deferred.succeed(before, "active")
      assert.strictEqual(yield* Fiber.join(early), "active")
      assert.strictEqual(cache.get("k"), "revoked", "the read begun before the eviction was not cached")
    })
  )

  it.effect("an eviction of another key leaves a running read shared and cached", () =>
    Effect.gen(function* () {
      const { cache, load } = fresh()
      const gate = yield* Deferred.make<string>()
      const g = gated(gate)
      const first = yield* Effect.fork(load("k", g.load))
      yield* Effect.yieldNow()
      cache.delete("other") // e.g. another session revoked through this broker
      const second = yield* Effect.fork(load("k", g.load))
      yield* Effect.yieldNow()
      yield* Deferred.succeed(gate, "v")
      assert.strictEqual(yield* Fiber.join(first), "v")
      assert.strictEqual(yield* Fiber.join(second), "v")
      assert.strictEqual(g.runs(), 1, "the caller after the other key's eviction joined the running read")
      assert.strictEqual(cache.get("k"), "v", "the read was cached despite the other key's eviction")
    })
  )

  it.effect("after a clear every running read is detached and not cached", () =>
    Effect.gen(function* () {
      const { cache, load } = fresh()
      const a = yield* Deferred.make<string>()
      const b = yield* Deferred.make<string>()
      const ga = gated(a)
      const gb = gated(b)
      const fa = yield* Effect.fork(load("a", ga.load))
      const fb = yield* Effect.fork(load("b", gb.load))
      yield* Effect.yieldNow()
      cache.clear()
      const late = yield* Effect.fork(load("a", ga.load))
      yield* Effect.yieldNow()
      yield* Deferred.succeed(a, "old-a")
      yield* Deferred.succeed(b, "old-b")
      assert.strictEqual(yield* Fiber.join(fa), "old-a")
      assert.strictEqual(yield* Fiber.join(fb), "old-b")
      assert.strictEqual(yield* Fiber.join(late), "old-a")
      assert.strictEqual(ga.runs(), 2, "the caller after the clear started its own read")
      assert.strictEqual(cache.get("b"), undefined, "the read begun before the clear was not cached")
      assert.strictEqual(cache.get("a"), "old-a", "the read begun after the clear was cached")
    })
  )

  it.effect("only values passing `keep` are cached", () =>
    Effect.gen(function* () {
      const cache = makeTtlCache<string, string>({ ttlMs: 60_000, maxEntries: 10 })
      const load = makeLoader<string, string, never>(cache, (v) => v === "active")
      assert.strictEqual(yield* load("a", Effect.succeed("pending")), "pending")
      assert.strictEqual(cache.get("a"), undefined)
      assert.strictEqual(yield* load("a", Effect.succeed("active")), "active")
      assert.strictEqual(cache.get("a"), "active")
    })
  )

  it.effect("a caller that goes away does not fail the others waiting on its read", () =>
    Effect.gen(function* () {
      const { load } = fresh()
      const gate = yield* Deferred.make<string>()
      const g = gated(gate)
      const first = yield* Effect.fork(load("k", g.load))
      yield* Effect.yieldNow()
      const second = yield* Effect.fork(load("k", g.load))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(first)
      yield* Deferred.succeed(gate, "v")
      assert.strictEqual(yield* Fiber.join(second), "v")
      assert.strictEqual(g.runs(), 1)
    })
  )

  it.effect("with the cache disabled (TTL 0) every call reads", () =>
    Effect.gen(function* () {
      const cache = makeTtlCache<string, string>({ ttlMs: 0, maxEntries: 10 })
      const load = makeLoader<string, string, never>(cache)
      let runs = 0
      const read = Effect.sync(() => `v${++runs}`)
      yield* Effect.all([load("k", read), load("k", read), load("k", read)], { concurrency: "unbounded" })
      assert.strictEqual(runs, 3)
    })
  )
})
