import { assert, describe, it } from "@effect/vitest"
import { Either, FastCheck as fc, Schema } from "effect"
import { Catalog } from "../src/index.js"

const MAX = 366 * 24 * 3600

describe("durations", () => {
  it("parses the documented forms", () => {
    assert.strictEqual(Catalog.parseDuration("90s"), 90)
    assert.strictEqual(Catalog.parseDuration("15m"), 900)
    assert.strictEqual(Catalog.parseDuration("1h"), 3600)
    assert.strictEqual(Catalog.parseDuration("1h30m"), 5400)
    assert.strictEqual(Catalog.parseDuration("2h15m30s"), 8130)
    assert.strictEqual(Catalog.parseDuration("8784h"), MAX)
  })

  it("rejects everything else", () => {
    for (const bad of [
      "",
      "0s",
      "0h0m",
      "1",
      "1d",
      "1m1h",
      "1.5h",
      " 1h",
      "1h ",
      "-1h",
      "1H",
      "8785h",
      "15 minutes",
      "h"
    ]) {
      assert.isUndefined(Catalog.parseDuration(bad), bad)
    }
  })

  it("format is the inverse of parse on every valid number of seconds", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX }), (seconds) => {
        assert.strictEqual(Catalog.parseDuration(Catalog.formatDuration(seconds)), seconds)
      })
    )
  })

  it("h/m/s components add up, whatever their size", () => {
    fc.assert(
      fc.property(fc.nat(9000), fc.nat(600), fc.nat(4000), (h, m, s) => {
        const expected = h * 3600 + m * 60 + s
        const parsed = Catalog.parseDuration(`${h}h${m}m${s}s`)
        assert.strictEqual(parsed, expected > 0 && expected <= MAX ? expected : undefined)
      })
    )
  })

  it("any string parses to nothing or to a whole number of seconds in range", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.stringMatching(/^[0-9hms]{0,8}$/)), (text) => {
        const parsed = Catalog.parseDuration(text)
        if (parsed !== undefined) assert.isTrue(Number.isInteger(parsed) && parsed > 0 && parsed <= MAX)
      })
    )
  })

  it("DurationSeconds decodes text and encodes the canonical form", () => {
    const decode = Schema.decodeUnknownEither(Catalog.DurationSeconds)
    assert.deepStrictEqual(decode("1h30m"), Either.right(5400))
    assert.isTrue(Either.isLeft(decode("30x")))
    assert.isTrue(Either.isLeft(decode(900)))
    assert.strictEqual(Schema.encodeSync(Catalog.DurationSeconds)(5400), "1h30m")
    assert.strictEqual(Schema.encodeSync(Catalog.DurationSeconds)(60), "1m")
  })
})
