import { assert, describe, it } from "@effect/vitest"
import { FastCheck } from "effect"
import { Masker } from "../src/internal/Masker.js"

const run = (secrets: ReadonlyArray<string>, chunks: ReadonlyArray<string>) => {
  const m = new Masker(secrets)
  const out = chunks.map((c) => m.push(Buffer.from(c)).toString("utf8")).join("")
  return out + m.flush().toString("utf8")
}

describe("Masker", () => {
  it("masks whole and split occurrences, keeps everything else", () => {
    assert.strictEqual(run(["s3cr3t"], ["a s3cr3t b"]), "a [masked] b")
    assert.strictEqual(run(["s3cr3t"], ["a s3", "cr", "3t b"]), "a [masked] b")
    assert.strictEqual(run(["s3cr3t"], ["s3cr", "3ts3cr3t"]), "[masked][masked]")
    assert.strictEqual(run(["s3cr3t"], ["a s3cr"]), "a s3cr", "a partial secret at the end is released")
    assert.strictEqual(run(["abc", "abcdef"], ["xabcdefx"]), "x[masked]x", "the longer secret wins")
  })

  it("holds back only what could start a secret", () => {
    const m = new Masker(["secret"])
    assert.strictEqual(m.push(Buffer.from("prompt> ")).toString(), "prompt> ")
    assert.strictEqual(m.push(Buffer.from("sec")).toString(), "")
    assert.strictEqual(m.push(Buffer.from("ond")).toString(), "second")
  })

  it("property: however the output is split, no secret survives and nothing else changes", () => {
    const alphabet = FastCheck.constantFrom("a", "b", "c", "x", "\n")
    FastCheck.assert(
      FastCheck.property(
        FastCheck.stringOf(alphabet, { minLength: 3, maxLength: 8 }),
        FastCheck.array(FastCheck.stringOf(alphabet, { maxLength: 12 }), { maxLength: 6 }),
        FastCheck.array(FastCheck.nat(40), { maxLength: 8 }),
        (secret, parts, cuts) => {
          const text = parts.join(secret)
          const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b)
          const chunks: Array<string> = []
          let last = 0
          for (const p of points) {
            chunks.push(text.slice(last, p))
            last = p
          }
          chunks.push(text.slice(last))
          const masked = run([secret], chunks)
          assert.strictEqual(masked, run([secret], [text]))
          assert.notInclude(masked, secret)
          assert.strictEqual(masked.split("[masked]").join(secret), text)
        }
      ),
      { numRuns: 500 }
    )
  })
})
