import * as Crypto from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Schema, Stream } from "effect"
import { AuditEvent, type Break } from "../src/AuditEvent.js"
import { AuditKeys, AuditLog, AuditReader, AuditSink } from "../src/index.js"
import { seal } from "../src/internal/record.js"
import { type Harness, SinkTamper } from "./harness.js"

export const input = (i: number, session = `s-${i % 3}`) =>
  ({
    actor: { type: "agent", id: i % 2 === 0 ? "codex" : "claude" },
    action: "credential.issued",
    outcome: "success",
    capability: "openrouter",
    session,
    wallet: "w1",
    tier: "medium",
    details: { n: i, ok: true, note: null, ratio: 0.5 }
  }) as const

type Env = AuditSink.AuditSink | SinkTamper | AuditKeys.AuditKeys

/** Append `n` events through a writer, then close it (final checkpoint). Returns the stream. */
export const writeStream = (n: number, options: AuditLog.Options = {}) =>
  Effect.gen(function* () {
    const log = yield* AuditLog.AuditLog
    for (let i = 1; i <= n; i++) yield* log.append(input(i))
    return yield* log.stream
  }).pipe(Effect.provide(AuditLog.layerWith({ instanceId: "conf", ...options })))

const parse = (line: string) => Schema.decodeUnknownSync(AuditEvent)(JSON.parse(line))

const collect = <A, E>(stream: Stream.Stream<A, E>) =>
  Effect.map(Stream.runCollect(stream), (chunk) => [...chunk])

const reader = Effect.gen(function* () {
  return AuditReader.make(yield* AuditSink.AuditSink, yield* AuditKeys.AuditKeys)
})

const firstBreak = Effect.gen(function* () {
  const report = yield* (yield* reader).verify()
  return report.firstBreak
})

const expectBreak = (found: Break | undefined, seq: number, reason: Break["reason"]) => {
  assert.isDefined(found, `expected ${reason} at ${seq}, verify passed`)
  assert.deepStrictEqual({ seq: found!.seq, reason: found!.reason }, { seq, reason }, found!.message)
}

export const conformance = (name: string, harness: Harness) =>
  describe(`AuditSink conformance: ${name}`, () => {
    const run = <A, E>(effect: Effect.Effect<A, E, Env>) =>
      Effect.provide(effect, Layer.merge(harness(), AuditKeys.layerEphemeral))

    it.live("stores, lists and scans records in order", () =>
      run(
        Effect.gen(function* () {
          const sink = yield* AuditSink.AuditSink
          yield* sink.open("b-stream")
          yield* sink.open("a-stream")
          const failed = yield* Effect.exit(sink.open("a-stream"))
          assert.isTrue(Exit.isFailure(failed), "a stream id cannot be opened twice")
          yield* sink.write("a-stream", [
            { seq: 1, line: '{"n":1}' },
            { seq: 2, line: '{"n":2}' }
          ])
          yield* sink.write("a-stream", [{ seq: 3, line: '{"n":3,"s":"é ☃"}' }])
          yield* sink.write("b-stream", [{ seq: 1, line: '{"b":1}' }])
          assert.deepStrictEqual(yield* sink.streams, ["a-stream", "b-stream"])
          const all = yield* collect(sink.scan("a-stream", 1))
          assert.deepStrictEqual(all, [
            { position: 1, line: '{"n":1}' },
            { position: 2, line: '{"n":2}' },
            { position: 3, line: '{"n":3,"s":"é ☃"}' }
          ])
          assert.deepStrictEqual(
            (yield* collect(sink.scan("a-stream", 3))).map((r) => r.line),
            ['{"n":3,"s":"é ☃"}']
          )
          assert.deepStrictEqual(yield* collect(sink.scan("missing-stream", 1)), [])
          const unopened = yield* Effect.exit(sink.write("c-stream", [{ seq: 1, line: "{}" }]))
          assert.isTrue(Exit.isFailure(unopened), "writing a stream that was not opened fails")
          yield* sink.close("a-stream")
        })
      )
    )

    it.live("stores checkpoints per stream", () =>
      run(
        Effect.gen(function* () {
          const sink = yield* AuditSink.AuditSink
          yield* sink.open("a-stream")
          assert.deepStrictEqual(yield* sink.checkpoints("a-stream"), [])
          yield* sink.writeCheckpoint("a-stream", 0, '{"c":0}')
          yield* sink.writeCheckpoint("a-stream", 5, '{"c":5}')
          assert.deepStrictEqual(yield* sink.checkpoints("a-stream"), ['{"c":0}', '{"c":5}'])
        })
      )
    )

    it.live("group-commits concurrent appends into few durable writes, one gap-free chain", () =>
      run(
        Effect.gen(function* () {
          let writes = 0
          const counting = Layer.effect(
            AuditSink.AuditSink,
            Effect.map(AuditSink.AuditSink, (sink) => ({
              ...sink,
              write: (stream: string, records: ReadonlyArray<{ seq: number; line: string }>) => {
                writes++
                return sink.write(stream, records)
              }
            }))
          )
          const events = yield* Effect.scoped(
            Effect.gen(function* () {
              const log = yield* AuditLog.AuditLog
              return yield* Effect.forEach(
                Array.from({ length: 300 }, (_, i) => i + 1),
                (i) => log.append(input(i)),
                { concurrency: "unbounded" }
              )
            }).pipe(Effect.provide(AuditLog.layerWith({ instanceId: "gc" }).pipe(Layer.provide(counting))))
          )
          const seqs = events.map((e) => e.seq).sort((a, b) => a - b)
          assert.deepStrictEqual(
            seqs,
            Array.from({ length: 300 }, (_, i) => i + 1)
          )
          assert.isBelow(writes, 300 / 2, `expected batching, saw ${writes} writes for 300 appends`)
          const report = yield* (yield* reader).verify()
          assert.isTrue(report.ok, JSON.stringify(report.firstBreak))
          assert.strictEqual(report.streams.length, 1)
          assert.strictEqual(report.streams[0]!.lastSeq, 300)
          assert.isTrue(report.streams[0]!.sealed)
        })
      )
    )

    it.live("tail and query by stream, time, session and actor", () =>
      run(
        Effect.gen(function* () {
          const stream = yield* writeStream(12)
          const r = yield* reader
          const tail = yield* r.tail(stream, { after: 9 })
          assert.deepStrictEqual(
            tail.map((e) => e.seq),
            [10, 11, 12]
          )
          assert.strictEqual((yield* r.tail(stream, { after: 2, limit: 4 })).length, 4)
          const bySession = yield* r.query({ session: "s-1" })
          assert.deepStrictEqual(
            bySession.map((e) => e.details.n),
            [1, 4, 7, 10]
          )
          const byActor = yield* r.query({ actor: "codex", limit: 3 })
          assert.deepStrictEqual(
            byActor.map((e) => e.details.n),
            [2, 4, 6]
          )
          const all = yield* r.query({ stream })
          assert.strictEqual(all.length, 12)
          const first = all[0]!.ts
          assert.strictEqual((yield* r.query({ from: first })).length, 12)
          assert.strictEqual((yield* r.query({ to: first })).length, 0)
          assert.strictEqual((yield* r.query({ stream, after: 10 })).length, 2)
        })
      )
    )

    it.live("records only the full path reads (\\u escapes, non-ASCII keys) verify and chain", () =>
      run(
        Effect.gen(function* () {
          const stream = yield* Effect.gen(function* () {
            const log = yield* AuditLog.AuditLog
            for (let i = 1; i <= 9; i++) {
              const odd = i % 3 === 0 ? { reason: `bell \u0007 lone \ud800 ${i}`, details: { é: i } } : {}
              yield* log.append({ ...input(i), ...odd })
            }
            return yield* log.stream
          }).pipe(Effect.provide(AuditLog.layerWith({ instanceId: "conf" })))
          const report = yield* (yield* reader).verify()
          assert.isTrue(report.ok, JSON.stringify(report.firstBreak))
          assert.strictEqual(report.streams[0]!.lastSeq, 9)
          assert.isTrue(report.streams[0]!.sealed)
          const t = yield* SinkTamper
          const lines = [...(yield* t.lines(stream))]
          assert.include(lines[5]!, "\\u0007")
          lines[5] = lines[5]!.replace('"outcome":"success"', '"outcome":"denied"')
          yield* t.setLines(stream, lines)
          expectBreak(yield* firstBreak, 6, "hash-mismatch")
        })
      )
    )

    describe("tampering is detected at the right seq", () => {
      const tamper = (
        edit: (lines: Array<string>) => Array<string>,
        expect: { seq: number; reason: Break["reason"] }
      ) =>
        run(
          Effect.gen(function* () {
            const stream = yield* writeStream(10)
            const before = yield* firstBreak
            assert.isUndefined(before, JSON.stringify(before))
            const t = yield* SinkTamper
            yield* t.setLines(stream, edit([...(yield* t.lines(stream))]))
            expectBreak(yield* firstBreak, expect.seq, expect.reason)
          })
        )

      it.live("one field edited", () =>
        tamper(
          (lines) => {
            lines[3] = lines[3]!.replace('"outcome":"success"', '"outcome":"denied"')
            return lines
          },
          { seq: 4, reason: "hash-mismatch" }
        )
      )

      it.live("a record deleted", () =>
        tamper((lines) => lines.filter((_, i) => i !== 3), { seq: 4, reason: "gap" })
      )

      it.live("two records swapped", () =>
        tamper(
          (lines) => {
            const fourth = lines[3]!
            lines[3] = lines[4]!
            lines[4] = fourth
            return lines
          },
          { seq: 4, reason: "out-of-order" }
        )
      )

      it.live("an unparsable record", () =>
        tamper(
          (lines) => {
            lines[5] = '{"hash":"not json'
            return lines
          },
          { seq: 6, reason: "unparsable" }
        )
      )

      it.live("a forged record appended after the final checkpoint (well-formed, chained)", () =>
        tamper(
          (lines) => {
            const { hash, ...rest } = parse(lines[9]!)
            const forged = seal({ ...rest, seq: 11, prevHash: hash })
            return [...lines, forged.line]
          },
          { seq: 11, reason: "after-final-checkpoint" }
        )
      )

      it.live("a forged record appended with a made-up hash", () =>
        tamper((lines) => [...lines, lines[9]!.replace('"seq":10', '"seq":11')], {
          seq: 11,
          reason: "hash-mismatch"
        })
      )

      it.live("a record re-hashed with a wrong prevHash", () =>
        tamper(
          (lines) => {
            const { hash: _hash, ...rest } = parse(lines[5]!)
            lines[5] = seal({ ...rest, prevHash: "f".repeat(64) }).line
            return lines
          },
          { seq: 6, reason: "bad-prev-hash" }
        )
      )

      it.live("history rewritten and re-chained (caught by the signed checkpoint)", () =>
        tamper(
          (lines) => {
            let prev: string | undefined
            return lines.map((line, i) => {
              const { hash, ...rest } = parse(line)
              if (i < 3) {
                prev = hash
                return line
              }
              const sealed = seal({
                ...rest,
                prevHash: prev!,
                ...(i === 3 ? { outcome: "denied" as const } : {})
              })
              prev = sealed.event.hash
              return sealed.line
            })
          },
          { seq: 10, reason: "checkpoint-mismatch" }
        )
      )

      // the line must be the canonical line of its content (ADR 0034), not just JSON that
      // decodes to content with the right hash, nor bytes that hash to the stored hash
      it.live("a record reformatted, its content unchanged", () =>
        tamper(
          (lines) => {
            lines[4] = lines[4]!.replace('"outcome":"success"', '"outcome": "success"')
            return lines
          },
          { seq: 5, reason: "hash-mismatch" }
        )
      )

      it.live("a record with its members in another order", () =>
        tamper(
          (lines) => {
            lines[4] = JSON.stringify(parse(lines[4]!))
            return lines
          },
          { seq: 5, reason: "hash-mismatch" }
        )
      )

      it.live("a record with a duplicate member", () =>
        tamper(
          (lines) => {
            lines[2] = lines[2]!.replace(',"wallet":"w1"}', ',"wallet":"w1","wallet":"w1"}')
            return lines
          },
          { seq: 3, reason: "hash-mismatch" }
        )
      )

      it.live("a record whose hash was recomputed over non-canonical bytes", () =>
        tamper(
          (lines) => {
            const body = `{${lines[6]!.slice(75)}`.replace('"outcome":"success"', '"outcome": "denied"')
            lines[6] = `{"hash":"${Crypto.hash("sha256", body, "hex")}",${body.slice(1)}`
            return lines
          },
          { seq: 7, reason: "hash-mismatch" }
        )
      )

      it.live("a record with a member the event does not have, re-hashed", () =>
        tamper(
          (lines) => {
            const { hash: _hash, ...rest } = parse(lines[6]!)
            const sealed = seal(rest)
            lines[6] = sealed.line.replace(',"wallet":"w1"}', ',"wallet":"w1","zz":1}')
            const body = `{${lines[6].slice(75)}`
            lines[6] = `{"hash":"${Crypto.hash("sha256", body, "hex")}",${body.slice(1)}`
            return lines
          },
          { seq: 7, reason: "unparsable" }
        )
      )

      it.live("the tail truncated (caught by the checkpoint)", () =>
        tamper((lines) => lines.slice(0, 7), { seq: 8, reason: "truncated" })
      )

      it.live("a checkpoint edited", () =>
        run(
          Effect.gen(function* () {
            const stream = yield* writeStream(5)
            const t = yield* SinkTamper
            const checkpoints = yield* t.checkpoints(stream)
            assert.isAbove(checkpoints.length, 0)
            yield* t.setCheckpoints(
              stream,
              checkpoints.map((c) => c.replace('"seq":5', '"seq":3'))
            )
            const found = yield* firstBreak
            assert.strictEqual(found?.reason, "bad-checkpoint")
          })
        )
      )
    })
  })
