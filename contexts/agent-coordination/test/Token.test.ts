import { assert, describe, it } from "@effect/vitest"
import { Effect, FastCheck, Option, Redacted } from "effect"
import * as LinkCode from "../src/LinkCode.js"
import * as Token from "../src/Token.js"

describe("Token", () => {
  it.effect("mints 256-bit tokens with a recognisable prefix and a checksum", () =>
    Effect.gen(function* () {
      const agent = yield* Token.mint("agent")
      const op = yield* Token.mint("operator")
      const a = Redacted.value(agent.token)
      assert.match(a, /^aap_agt_[0-9A-Za-z]{49}$/)
      assert.match(Redacted.value(op.token), /^aap_op_[0-9A-Za-z]{49}$/)
      assert.deepStrictEqual(Token.parse(agent.token), Option.some("agent"))
      assert.deepStrictEqual(Token.parse(op.token), Option.some("operator"))
      assert.strictEqual(agent.hash, Token.hash(agent.token))
      assert.match(agent.hash, /^[0-9a-f]{64}$/)
      assert.strictEqual(agent.fingerprint, agent.hash.slice(0, 12))
      assert.notStrictEqual(Redacted.value(agent.token), Redacted.value((yield* Token.mint("agent")).token))
      // Redacted: never printed
      assert.notInclude(String(agent.token), a)
      assert.notInclude(JSON.stringify({ t: agent.token }), a)
    })
  )

  it("encodes all 256 bits: distinct random inputs give distinct tokens, the extremes fit", () => {
    const zero = Redacted.value(Token.fromBytes("agent", new Uint8Array(32)))
    const max = Redacted.value(Token.fromBytes("agent", new Uint8Array(32).fill(255)))
    assert.strictEqual(zero.length, max.length)
    assert.deepStrictEqual(Token.parse(Redacted.make(max)), Option.some("agent"))
    FastCheck.assert(
      FastCheck.property(
        FastCheck.uint8Array({ minLength: 32, maxLength: 32 }),
        FastCheck.uint8Array({ minLength: 32, maxLength: 32 }),
        (a, b) => {
          const ta = Redacted.value(Token.fromBytes("agent", a))
          const tb = Redacted.value(Token.fromBytes("agent", b))
          return Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0 ? ta === tb : ta !== tb
        }
      )
    )
  })

  it("rejects malformed tokens and any single-character typo", () => {
    const good = Redacted.value(Token.fromBytes("operator", new Uint8Array(32).fill(7)))
    for (const bad of [
      "",
      "aap_agt_",
      "aap_op_short",
      "ghp_abcdef",
      `${good}x`,
      good.replace("aap_op_", "aap_agt_")
    ]) {
      assert.isTrue(Option.isNone(Token.parse(Redacted.make(bad))), bad.slice(0, 12))
    }
    FastCheck.assert(
      FastCheck.property(FastCheck.integer({ min: 7, max: good.length - 1 }), (i) => {
        const c = good[i] === "a" ? "b" : "a"
        return Option.isNone(Token.parse(Redacted.make(good.slice(0, i) + c + good.slice(i + 1))))
      })
    )
  })
})

describe("LinkCode", () => {
  it.effect("mints 16 Crockford base32 characters in groups of four; normalises retyped input", () =>
    Effect.gen(function* () {
      const code = yield* LinkCode.mint
      const raw = Redacted.value(code)
      assert.match(raw, /^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$/)
      assert.isTrue(LinkCode.isWellFormed(code))
      const retyped = Redacted.make(
        ` ${raw.toLowerCase().replace(/-/g, " ").replace(/1/g, "l").replace(/0/g, "o")} `
      )
      assert.strictEqual(LinkCode.hash(retyped), LinkCode.hash(code))
      assert.isFalse(LinkCode.isWellFormed(Redacted.make("ABCD-EFGH")))
      assert.isFalse(LinkCode.isWellFormed(Redacted.make("ABCD-EFGH-JKMN-PQRU")))
    })
  )
})
