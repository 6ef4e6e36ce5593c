import { assert, describe, it } from "@effect/vitest"
import * as HighWater from "../src/internal/highWater.js"

describe("HighWater (rollback marks, ADR 0044)", () => {
  it("an older version than one noted is a rollback; the same or a newer one is not", () => {
    const seen = HighWater.make({ maxEntries: 10, now: () => 0 })
    assert.isFalse(seen.isRollback("session#a", 1), "nothing noted yet")
    seen.note("session#a", 3, 100)
    seen.note("session#a", 2, 100) // a stale read never lowers the mark
    assert.isTrue(seen.isRollback("session#a", 2))
    assert.isFalse(seen.isRollback("session#a", 3))
    assert.isFalse(seen.isRollback("session#a", 4))
    assert.isFalse(seen.isRollback("session#b", 1))
  })

  it("past maxEntries, marks whose deadline passed go first, then the oldest", () => {
    let t = 0
    const seen = HighWater.make({ maxEntries: 3, now: () => t })
    seen.note("x", 5, 10) // expires at 10
    seen.note("y", 5, 1_000)
    seen.note("z", 5, 1_000)
    t = 50
    seen.note("w", 5, 1_000) // over the bound: x (past its deadline) is dropped
    assert.strictEqual(seen.size(), 3)
    assert.isFalse(seen.isRollback("x", 1))
    assert.isTrue(seen.isRollback("y", 1))
    seen.note("v", 5, 1_000) // none expired: the oldest (y) goes
    assert.strictEqual(seen.size(), 3)
    assert.isFalse(seen.isRollback("y", 1))
    assert.isTrue(seen.isRollback("z", 1) && seen.isRollback("w", 1) && seen.isRollback("v", 1))
  })
})
