import * as Crypto from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { type Parsed, parseStored, seal, type Unsealed } from "../src/internal/record.js"
import { NextRecord } from "../src/internal/verifyLine.js"

const STREAM = "x-01JDQ8Z5Y3K4W6N7P8Q9R0S1T4"

const base: Unsealed = {
  action: "credential.issued",
  actor: { id: "codex", type: "agent" },
  capability: "openrouter",
  details: { backing: "bearer-token", i: 7, ttlSeconds: 900 },
  id: "01JDQ8Z5Y3K4W6N7P8Q9R0S1T5",
  outcome: "success",
  prevHash: "ab".repeat(32),
  seq: 7,
  session: "01JDQ8Z5Y3K4W6N7P8Q9R0S1T3",
  stream: STREAM,
  tier: "medium",
  traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
  ts: "2026-11-22T04:05:06.789Z",
  wallet: "codex"
}

/** The fast path on one line, expecting `seq`, `prevHash` and the stream of `expect`. */
const fast = (line: string, expect: Pick<Unsealed, "seq" | "prevHash" | "stream"> = base) => {
  const next = new NextRecord(expect.stream, expect.prevHash)
  const buffer = Buffer.from(line + "\n", "utf8")
  next.chunk(buffer)
  const end = next.accept(0, expect.seq)
  return { end, hash: end >= 0 ? next.prevHash() : undefined, length: buffer.length - 1 }
}

const full = (line: string): Parsed => parseStored(Buffer.from(line, "utf8"))

/** A line whose `hash` is recomputed over its own (possibly non-canonical) body bytes. */
const rehashed = (body: string) => `{"hash":"${Crypto.hash("sha256", body, "hex")}",${body.slice(1)}`

const bodyOfLine = (line: string) => `{${line.slice(75)}`

const expectBad = (line: string, reason: string) => {
  assert.strictEqual(fast(line).end, -1, "the fast path must not accept it")
  const parsed = full(line)
  assert.strictEqual(parsed._tag, "Bad")
  if (parsed._tag === "Bad") assert.strictEqual(parsed.reason, reason, parsed.message)
}

describe("verify: the stored line must be the canonical line (ADR 0034)", () => {
  const { event, line } = seal(base)

  it("accepts the writer's line on both paths, with the same hash", () => {
    const f = fast(line)
    assert.strictEqual(f.end, f.length)
    assert.strictEqual(f.hash, event.hash)
    const parsed = full(line)
    assert.strictEqual(parsed._tag, "Ok")
    if (parsed._tag === "Ok") assert.deepStrictEqual(parsed.event, event)
  })

  it("the fast path wants exactly the expected seq, prevHash and stream (the full path classifies)", () => {
    assert.strictEqual(fast(line, { ...base, seq: 8 }).end, -1)
    assert.strictEqual(fast(line, { ...base, prevHash: "cd".repeat(32) }).end, -1)
    assert.strictEqual(fast(line, { ...base, stream: "y-01JDQ8Z5Y3K4W6N7P8Q9R0S1T4" }).end, -1)
    assert.strictEqual(full(line)._tag, "Ok")
  })

  it("rejects whitespace, even when the content hashes right", () => {
    expectBad(line.replace('"outcome":"success"', '"outcome": "success"'), "hash-mismatch")
    expectBad(line.replace(',"seq":7', ', "seq":7'), "hash-mismatch")
    expectBad(`${line} `, "hash-mismatch")
    expectBad(`${line}\r`, "hash-mismatch")
    const pretty = JSON.stringify(JSON.parse(line), null, 1).replaceAll("\n", "")
    expectBad(pretty, "hash-mismatch")
  })

  it("rejects the same content in another order (hash member in its sorted place)", () => {
    const sorted = JSON.stringify(
      Object.fromEntries(Object.entries(event).sort(([a], [b]) => (a < b ? -1 : 1)))
    )
    expectBad(sorted, "hash-mismatch")
    expectBad(
      line.replace('"actor":{"id":"codex","type":"agent"}', '"actor":{"type":"agent","id":"codex"}'),
      "hash-mismatch"
    )
    expectBad(line.replace('"i":7,"ttlSeconds":900', '"ttlSeconds":900,"i":7'), "hash-mismatch")
  })

  it("rejects duplicate members, whether JSON.parse would keep the first or the second value", () => {
    expectBad(line.replace(',"wallet":"codex"}', ',"wallet":"codex","wallet":"codex"}'), "hash-mismatch")
    expectBad(line.replace(',"seq":7,', ',"seq":7,"seq":7,'), "hash-mismatch")
    expectBad(line.replace('"i":7,', '"i":7,"i":7,'), "hash-mismatch")
    // a second "seq" member that a text scan for the last "seq" would read
    expectBad(line.replace(',"wallet":"codex"}', ',"wallet":"codex","seq":8}'), "hash-mismatch")
  })

  it("rejects other encodings of the same values (escapes, numbers)", () => {
    expectBad(line.replace('"wallet":"codex"', '"wallet":"\\u0063odex"'), "hash-mismatch")
    expectBad(line.replace('"ttlSeconds":900', '"ttlSeconds":900.0'), "hash-mismatch")
    expectBad(line.replace('"ttlSeconds":900', '"ttlSeconds":9e2'), "hash-mismatch")
    expectBad(line.replace('"seq":7', '"seq":7.0'), "hash-mismatch")
    expectBad(line.replace('"seq":7', '"seq":07'), "unparsable") // not JSON
  })

  it("rejects a non-canonical body whose own bytes were hashed (a forgery of the byte hash)", () => {
    const body = bodyOfLine(line)
    for (const forged of [
      body.replace('"outcome":"success"', '"outcome": "success"'),
      body.replace(',"wallet":"codex"}', ',"wallet":"codex","wallet":"other"}'),
      body.replace(',"seq":7,', ',"seq":7,"seq":9,'),
      body.replace('"i":7', '"i":7.0'),
      body.replace('"i":7', '"i":-0'),
      body.replace('"i":7', '"i":12345678901234567'),
      body.replace('"i":7', '"i":1E21'),
      body.replace('"i":7,"ttlSeconds":900', '"ttlSeconds":900,"i":7'),
      body.replace('"i":7,', '"i":7,"i":8,'),
      body.replace('"backing":"bearer-token"', '"backing":"bearer\\/token"'),
      body.replace('"backing":"bearer-token"', '"backing":"bearer\\u002dtoken"'),
      body.replace('"outcome":"success"', '"outcome":"success","outcome":"success"')
    ]) {
      const crafted = rehashed(forged)
      assert.strictEqual(Crypto.hash("sha256", bodyOfLine(crafted), "hex"), crafted.slice(9, 73))
      expectBad(crafted, "hash-mismatch")
    }
    // a raw control character is not even JSON
    expectBad(rehashed(body.replace('"backing":"bearer-token"', '"backing":"bearer\ttoken"')), "unparsable")
  })

  it("rejects members the event does not have and values outside the schema, even re-hashed", () => {
    const body = bodyOfLine(line)
    expectBad(rehashed(body.replace(',"wallet":"codex"}', ',"wallet":"codex","zzz":1}')), "unparsable")
    expectBad(
      rehashed(body.replace('"actor":{"id":"codex",', '"actor":{"extra":1,"id":"codex",')),
      "unparsable"
    )
    expectBad(
      rehashed(body.replace('"01JDQ8Z5Y3K4W6N7P8Q9R0S1T5"', '"01JDQ8Z5Y3K4W6N7P8Q9R0S1TI"')),
      "unparsable"
    )
    expectBad(
      rehashed(body.replace('"ts":"2026-11-22T04:05:06.789Z"', '"ts":"2026-11-22 04:05:06"')),
      "unparsable"
    )
    expectBad(rehashed(body.replace('"tier":"medium"', '"tier":"huge"')), "unparsable")
    expectBad(rehashed(body.replace('"action":"credential.issued"', '"action":"Credential"')), "unparsable")
    expectBad(rehashed(body.replace('"ttlSeconds":900', '"ttlSeconds":[900]')), "unparsable")
    expectBad(rehashed(body.replace('"seq":7', '"seq":0')), "unparsable")
  })

  it("rejects bytes that are not UTF-8 (they would decode to U+FFFD)", () => {
    const bytes = Buffer.from(line, "utf8")
    const at = bytes.indexOf(Buffer.from("codex"))
    bytes[at] = 0xff
    const parsed = parseStored(bytes)
    assert.strictEqual(parsed._tag, "Bad")
    if (parsed._tag === "Bad") assert.strictEqual(parsed.reason, "unparsable")
    // re-hashed over the bytes: the fast path must refuse it too
    const body = Buffer.concat([Buffer.from("{"), bytes.subarray(75)])
    const forged = Buffer.concat([
      Buffer.from(`{"hash":"${Crypto.hash("sha256", body, "hex")}",`),
      bytes.subarray(75),
      Buffer.from("\n")
    ])
    const next = new NextRecord(STREAM, base.prevHash)
    next.chunk(forged)
    assert.strictEqual(next.accept(0, base.seq), -1)
    const reparsed = parseStored(forged.subarray(0, forged.length - 1))
    assert.strictEqual(reparsed._tag === "Bad" && reparsed.reason, "unparsable")
  })

  it("leaves rarer canonical forms to the full path, which accepts them", () => {
    for (const e of [
      { ...base, reason: "bell \u0007 and a lone \ud800" },
      { ...base, details: { é: 1, "\u0001": true } },
      { ...base, details: { n: 1e21, m: 0.1, big: 123456789012345680000 } }
    ]) {
      const sealed = seal(e)
      const parsed = full(sealed.line)
      assert.strictEqual(parsed._tag, "Ok", sealed.line)
      const f = fast(sealed.line)
      if (f.end >= 0) assert.strictEqual(f.hash, sealed.event.hash)
    }
    // numbers in their shortest form are read by the fast path too
    const numbers = seal({ ...base, details: { n: 1e21, m: 0.1, k: -1.5, z: 0 } })
    assert.strictEqual(fast(numbers.line).end, fast(numbers.line).length)
  })

  const text = fc.string({ unit: "binary", maxLength: 10 })
  const ascii = fc.string({ maxLength: 10 })
  const events: fc.Arbitrary<Unsealed> = fc.record(
    {
      actor: fc.record({
        type: fc.constantFrom<Unsealed["actor"]["type"]>("agent", "operator", "system", "anonymous"),
        id: fc.oneof(ascii, text)
      }),
      action: fc.constantFrom<Unsealed["action"]>("credential.issued", "auth.failed", "x.y-z", "a1.b2.c3"),
      outcome: fc.constantFrom<Unsealed["outcome"]>("success", "denied", "error"),
      capability: fc.oneof(ascii, text),
      session: ascii,
      wallet: fc.oneof(ascii, text),
      tier: fc.constantFrom<NonNullable<Unsealed["tier"]>>("low", "medium", "high", "critical"),
      reason: fc.oneof(ascii, text),
      traceId: ascii,
      details: fc.dictionary(
        fc.oneof(ascii, text, fc.constant("__proto__")),
        fc.oneof(
          ascii,
          text,
          fc.integer(),
          fc.double({ noNaN: true, noDefaultInfinity: true }),
          fc.boolean(),
          fc.constant(null)
        )
      ),
      hmac: fc.dictionary(ascii, fc.hexaString({ minLength: 64, maxLength: 64 })),
      id: fc.constantFrom("01JDQ8Z5Y3K4W6N7P8Q9R0S1T5", "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"),
      stream: fc.constant(STREAM),
      seq: fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })),
      ts: fc.constant("2026-11-22T04:05:06.789Z"),
      prevHash: fc.hexaString({ minLength: 64, maxLength: 64 })
    },
    { requiredKeys: ["actor", "action", "outcome", "details", "id", "stream", "seq", "ts", "prevHash"] }
  )

  /** Every line the fast path accepts, the full path accepts, with the same seq, prevHash, stream, hash. */
  const agree = (line: string, e: Unsealed) => {
    const f = fast(line, e)
    if (f.end < 0) return
    assert.strictEqual(f.end, f.length)
    const parsed = full(line)
    assert.strictEqual(parsed._tag, "Ok", `fast path accepted what the full path rejects: ${line}`)
    if (parsed._tag !== "Ok") return
    assert.strictEqual(parsed.event.seq, e.seq)
    assert.strictEqual(parsed.event.prevHash, e.prevHash)
    assert.strictEqual(parsed.event.stream, e.stream)
    assert.strictEqual(parsed.event.hash, f.hash)
  }

  it("the fast path accepts every writer line without \\u escapes or non-ASCII keys, and agrees with the full path (property)", () => {
    fc.assert(
      fc.property(events, (e) => {
        const { event: sealed, line } = seal(e)
        const parsed = full(line)
        assert.strictEqual(parsed._tag, "Ok", line)
        agree(line, e)
        const keys = [...Object.keys(e.details), ...Object.keys(e.hmac ?? {})]
        const plainKeys = keys.every((k) => /^[\x20-\x7f]*$/.test(k) && !/["\\]/.test(k))
        if (!line.includes("\\u") && plainKeys && e.seq < 1e15) {
          assert.strictEqual(fast(line, e).hash, sealed.hash, `fast path refused a canonical line: ${line}`)
        }
      }),
      { numRuns: 1000 }
    )
  })

  it("every single-character edit of a line, re-hashed over its bytes, is judged alike by both paths", () => {
    const alphabet = [...'" \\,:{}[]019-.eE+azAZIT\t\u007f\u00e9/u']
    for (const e of [
      base,
      seal({ ...base, hmac: { fp: "0f".repeat(32), x: "a1".repeat(32) }, reason: "r" }).event,
      {
        action: "a.b",
        actor: { id: "", type: "system" },
        details: {},
        id: base.id,
        outcome: "error",
        prevHash: base.prevHash,
        seq: 1234567,
        stream: STREAM,
        ts: base.ts
      } satisfies Unsealed
    ]) {
      const { hash: _hash, ...unsealed } = e as Unsealed & { hash?: string }
      const { line } = seal(unsealed)
      let accepted = 0
      for (let i = 0; i < line.length; i++) {
        const edits = [line.slice(0, i) + line.slice(i + 1)]
        for (const c of alphabet) {
          edits.push(line.slice(0, i) + c + line.slice(i + 1), line.slice(0, i) + c + line.slice(i))
        }
        for (const edited of edits) {
          for (const candidate of [edited, edited.length > 75 ? rehashed(bodyOfLine(edited)) : edited]) {
            if (fast(candidate, unsealed).end >= 0) accepted++
            agree(candidate, unsealed)
          }
        }
      }
      assert.isAbove(accepted, 0, "some edits (inside strings) are valid records")
    }
  })

  const mutation = fc.oneof(
    // one character inserted, replaced or deleted, the hash kept or recomputed over the bytes
    fc.tuple(fc.constant("insert"), fc.nat(), fc.constantFrom(" ", '"', "\\", ",", "0", "a", "}", "é", "\t")),
    fc.tuple(
      fc.constant("replace"),
      fc.nat(),
      fc.constantFrom(" ", '"', "\\", ",", "0", "1", "a", "I", "}", "é")
    ),
    fc.tuple(fc.constant("delete"), fc.nat(), fc.constant(""))
  )

  it("mutated lines (even re-hashed over their bytes) are never accepted by the fast path alone (property)", () => {
    fc.assert(
      fc.property(events, mutation, fc.boolean(), (e, [kind, at, c], rehash) => {
        const { line } = seal(e)
        const chars = [...line]
        const i = at % chars.length
        if (kind === "insert") chars.splice(i, 0, c)
        else if (kind === "replace") chars[i] = c
        else chars.splice(i, 1)
        let mutated = chars.join("")
        if (mutated.includes("\n")) return
        if (rehash && mutated.startsWith('{"hash":"') && mutated.length > 75)
          mutated = rehashed(bodyOfLine(mutated))
        agree(mutated, e)
      }),
      { numRuns: 3000 }
    )
  })
})
