import { assert, describe, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import { CanonicalJson } from "../src/index.js"
import { bodyOf, hashOf, seal, type Unsealed } from "../src/internal/record.js"

describe("CanonicalJson (ADR 0030)", () => {
  it("sorts keys by UTF-16 code units, at every depth, with no whitespace", () => {
    assert.strictEqual(
      CanonicalJson.stringifyUnsafe({
        b: 1,
        a: { d: [3, { z: true, y: null }], c: "x" },
        B: 0,
        é: 1,
        "😀": 2,
        "\uff61": 3
      }),
      '{"B":0,"a":{"c":"x","d":[3,{"y":null,"z":true}]},"b":1,"é":1,"😀":2,"｡":3}'
    )
  })

  it("omits undefined members, keeps null", () => {
    assert.strictEqual(CanonicalJson.stringifyUnsafe({ a: undefined, b: null }), '{"b":null}')
  })

  it("writes numbers in shortest round-trip form, -0 as 0, and rejects non-finite numbers", () => {
    assert.strictEqual(
      CanonicalJson.stringifyUnsafe([0, -0, 1e21, 1e-7, 0.1, 123456789012345680000, -1.5]),
      "[0,0,1e+21,1e-7,0.1,123456789012345680000,-1.5]"
    )
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const result = CanonicalJson.stringify({ n: bad })
      assert.isTrue(Either.isLeft(result))
      if (Either.isLeft(result)) assert.strictEqual(result.left.path, "$.n")
    }
  })

  it("escapes strings as JSON.stringify does (controls, quotes, lone surrogates), no \\/ escaping", () => {
    assert.strictEqual(
      CanonicalJson.stringifyUnsafe('a"b\\c\n\u0001/\ud800'),
      '"a\\"b\\\\c\\n\\u0001/\\ud800"'
    )
  })

  it("rejects values without a JSON form", () => {
    for (const bad of [
      new Date(0),
      new Map(),
      () => 1,
      1n,
      Symbol("x"),
      [undefined],
      { x: new Uint8Array(1) }
    ]) {
      assert.isTrue(Either.isLeft(CanonicalJson.stringify(bad)), String(bad))
    }
  })

  it("encodes as UTF-8", () => {
    const bytes = Either.getOrThrow(CanonicalJson.encode({ s: "é☃" }))
    assert.deepStrictEqual([...bytes], [...Buffer.from('{"s":"é☃"}', "utf8")])
  })

  it("is stable: parse then re-encode gives the same text (property)", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const once = CanonicalJson.stringifyUnsafe(value)
        assert.strictEqual(CanonicalJson.stringifyUnsafe(JSON.parse(once)), once)
      })
    )
  })

  const text = fc.string({ unit: "binary", maxLength: 12 })
  const event = fc.record(
    {
      actor: fc.record({
        type: fc.constantFrom<Unsealed["actor"]["type"]>("agent", "operator", "system", "anonymous"),
        id: text
      }),
      action: fc.constantFrom<Unsealed["action"]>("credential.issued", "auth.failed", "x.y-z"),
      outcome: fc.constantFrom<Unsealed["outcome"]>("success", "denied", "error"),
      capability: text,
      session: text,
      wallet: text,
      tier: fc.constantFrom<NonNullable<Unsealed["tier"]>>("low", "medium", "high", "critical"),
      reason: text,
      traceId: text,
      details: fc.dictionary(
        text,
        fc.oneof(text, fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null))
      ),
      hmac: fc.dictionary(text, fc.hexaString({ minLength: 64, maxLength: 64 })),
      id: fc.constant("01JDQ8Z5Y3K4W6N7P8Q9R0S1T5"),
      stream: fc.constant("x-01JDQ8Z5Y3K4W6N7P8Q9R0S1T4"),
      seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
      ts: fc.constant("2026-11-22T04:05:06.789Z"),
      prevHash: fc.hexaString({ minLength: 64, maxLength: 64 })
    },
    { requiredKeys: ["actor", "action", "outcome", "details", "id", "stream", "seq", "ts", "prevHash"] }
  )

  it("the writer's member-by-member encoder equals the generic one for every event (property)", () => {
    fc.assert(
      fc.property(event, (e) => {
        assert.strictEqual(bodyOf(e), CanonicalJson.stringifyUnsafe(e))
      }),
      { numRuns: 500 }
    )
  })

  it("a stored line is the hash member then the canonical members; hash = SHA-256 of the canonical text", () => {
    fc.assert(
      fc.property(event, (e) => {
        const { event: sealed, line } = seal(e)
        assert.strictEqual(line, `{"hash":"${sealed.hash}",${CanonicalJson.stringifyUnsafe(e).slice(1)}`)
        assert.deepStrictEqual(JSON.parse(line), JSON.parse(JSON.stringify(sealed)))
        assert.strictEqual(hashOf(sealed), sealed.hash)
      }),
      { numRuns: 200 }
    )
  })

  it("matches a hash computed independently of this code", () => {
    // sha256 of the exact canonical text below, computed with `printf %s ... | sha256sum`
    const e = {
      action: "credential.issued" as const,
      actor: { id: "codex", type: "agent" as const },
      details: {},
      id: "01JDQ8Z5Y3K4W6N7P8Q9R0S1T5",
      outcome: "success" as const,
      prevHash: "0".repeat(64),
      seq: 1,
      stream: "x-01JDQ8Z5Y3K4W6N7P8Q9R0S1T4",
      ts: "2026-11-22T04:05:06.789Z"
    }
    const canonical =
      '{"action":"credential.issued","actor":{"id":"codex","type":"agent"},"details":{},"id":"01JDQ8Z5Y3K4W6N7P8Q9R0S1T5","outcome":"success","prevHash":"0000000000000000000000000000000000000000000000000000000000000000","seq":1,"stream":"x-01JDQ8Z5Y3K4W6N7P8Q9R0S1T4","ts":"2026-11-22T04:05:06.789Z"}'
    assert.strictEqual(CanonicalJson.stringifyUnsafe(e), canonical)
    assert.strictEqual(seal(e).event.hash, EXPECTED)
  })
})

const EXPECTED = "48c27efd6060a9e41f5d8cebaa2c2f0cc233367ddd9719bfbde34f12f552f52a"
