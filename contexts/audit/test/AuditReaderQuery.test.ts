/**
 * `query` reads a stream only as far as its answer needs (records of a stream come in
 * (ts, stream, seq) order): a limited query over a long log stops after `limit` matches per
 * stream, and a `to` bound stops at the first record past it; `tail` stops at its limit. The
 * answer is the one a full scan gives.
 */
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Layer, Stream } from "effect"
import { AuditKeys, AuditLog, AuditReader, AuditSink } from "../src/index.js"
import { input } from "./AuditSinkConformance.js"

const layer = AuditLog.layerWith({ instanceId: "q", appendTimeout: "5 seconds" }).pipe(
  Layer.provideMerge(AuditSink.layerMemory),
  Layer.provideMerge(AuditKeys.layerEphemeral),
  Layer.orDie
)

const EVENTS = 2_000

describe("AuditReader.query", () => {
  it.live("stops reading a stream once the answer is known, with the full scan's answer", () =>
    Effect.gen(function* () {
      const log = yield* AuditLog.AuditLog
      const sink = yield* AuditSink.AuditSink
      const keys = yield* AuditKeys.AuditKeys
      yield* Effect.forEach(
        Array.from({ length: EVENTS }, (_, i) => i + 1),
        (i) => log.append(input(i)),
        {
          concurrency: 64
        }
      )
      // The stream handed over as one chunk (the JSONL sink hands over a whole segment), each
      // line counted when the reader looks at it.
      let pulled = 0
      const counting: AuditSink.AuditSinkShape = {
        ...sink,
        scan: (stream, from) =>
          Stream.unwrap(
            Effect.map(Stream.runCollect(sink.scan(stream, from)), (lines) =>
              Stream.fromChunk(
                Chunk.map(lines, (stored) => ({
                  position: stored.position,
                  get line() {
                    pulled++
                    return stored.line
                  }
                }))
              )
            )
          )
      }
      const reader = AuditReader.make(counting, keys)

      const first = yield* reader.query({ limit: 20 })
      assert.deepStrictEqual(
        first.map((e) => e.seq),
        Array.from({ length: 20 }, (_, i) => i + 1)
      )
      assert.strictEqual(pulled, 20)

      // a filter the answer must search for: matches among every third record
      pulled = 0
      const bySession = yield* reader.query({ session: "s-0", limit: 10 })
      assert.deepStrictEqual(
        bySession.map((e) => e.details.n),
        [3, 6, 9, 12, 15, 18, 21, 24, 27, 30]
      )
      assert.isBelow(pulled, EVENTS / 2)

      // `to` at the 100th record's time: nothing later is read or returned
      const all = yield* reader.query({ limit: EVENTS })
      assert.strictEqual(all.length, EVENTS)
      const cut = all[99]!.ts
      pulled = 0
      const before = yield* reader.query({ to: cut, limit: EVENTS })
      assert.deepStrictEqual(
        before.map((e) => e.seq),
        all.filter((e) => e.ts < cut).map((e) => e.seq)
      )
      assert.isBelow(pulled, EVENTS / 2)

      // tail: the same early stop
      pulled = 0
      const page = yield* reader.tail(all[0]!.stream, { after: 100, limit: 5 })
      assert.deepStrictEqual(
        page.map((e) => e.seq),
        [101, 102, 103, 104, 105]
      )
      assert.strictEqual(pulled, 5)

      // a query that needs everything still gets everything
      const claude = yield* reader.query({ actor: "claude", limit: EVENTS })
      assert.strictEqual(claude.length, EVENTS / 2)
    }).pipe(Effect.provide(layer))
  )
})

describe("AuditReader.forEachAction", () => {
  it.live("passes every event whose action has the prefix, of every stream, each stream in order", () =>
    Effect.gen(function* () {
      const log = yield* AuditLog.AuditLog
      const sink = yield* AuditSink.AuditSink
      const keys = yield* AuditKeys.AuditKeys
      const actions = [
        "session.requested",
        "credential.issued",
        "session.revoked",
        "sessions.other",
        "auth.x"
      ] as const
      for (let i = 0; i < 50; i++) {
        yield* log.append({ ...input(i), action: actions[i % actions.length]!, details: { n: i } })
      }
      // a second stream (another writer on the same sink)
      yield* Effect.scoped(
        Effect.gen(function* () {
          const second = yield* AuditLog.AuditLog
          yield* second.append({ ...input(99), action: "session.denied", details: { n: 99 } })
        }).pipe(Effect.provide(AuditLog.layerWith({ instanceId: "q2" })))
      )
      const seen: Array<[string, number]> = []
      const passed = yield* AuditReader.make(sink, keys).forEachAction(["session."], (e) =>
        seen.push([e.action, Number((e.details as Record<string, unknown>).n)])
      )
      const expected = Array.from({ length: 50 }, (_, i) => i)
        .filter((i) => i % 5 === 0 || i % 5 === 2)
        .map((i): [string, number] => [actions[i % 5]!, i])
      assert.strictEqual(passed, expected.length + 1)
      assert.sameDeepMembers(seen, [...expected, ["session.denied", 99]])
      assert.deepStrictEqual(
        seen.filter(([, n]) => n !== 99),
        expected,
        "the first stream's events in seq order"
      )
    }).pipe(Effect.provide(layer))
  )
})
