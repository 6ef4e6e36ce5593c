import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Redacted } from "effect"
import { GENESIS_HASH } from "../src/AuditEvent.js"
import { AuditHmac, AuditLog, AuditReader, AuditSink } from "../src/index.js"

const input = (i: number) =>
  ({
    actor: { type: "agent", id: "codex" },
    action: "credential.issued",
    outcome: "success",
    capability: "openrouter",
    session: `s-${i}`,
    details: { n: i, ok: true, note: null }
  }) as const

describe("AuditLog.layerMemory", () => {
  it.live("appends a hash chain that verifies", () =>
    Effect.gen(function* () {
      const log = yield* AuditLog.AuditLog
      const reader = yield* AuditReader.AuditReader
      const events = yield* Effect.forEach([1, 2, 3, 4, 5], (i) => log.append(input(i)), {
        concurrency: "unbounded"
      })
      const sorted = [...events].sort((a, b) => a.seq - b.seq)
      assert.deepStrictEqual(
        sorted.map((e) => e.seq),
        [1, 2, 3, 4, 5]
      )
      assert.strictEqual(sorted[0]!.prevHash, GENESIS_HASH)
      for (let i = 1; i < sorted.length; i++) assert.strictEqual(sorted[i]!.prevHash, sorted[i - 1]!.hash)
      const report = yield* reader.verify()
      assert.isTrue(report.ok)
      assert.strictEqual(report.streams[0]!.lastSeq, 5)
      const tail = yield* reader.tail(yield* log.stream, { after: 2, limit: 2 })
      assert.deepStrictEqual(
        tail.map((e) => e.seq),
        [3, 4]
      )
    }).pipe(Effect.provide(AuditLog.layerMemory))
  )

  it.live("stores sensitive values only as HMAC, searchable by the operator", () =>
    Effect.gen(function* () {
      const log = yield* AuditLog.AuditLog
      const reader = yield* AuditReader.AuditReader
      const control = yield* AuditSink.MemorySink
      const canary = "sk-or-v1-CANARY-0123456789abcdef"
      const event = yield* log.append({ ...input(1), sensitive: { token: Redacted.make(canary) } })
      const mac = yield* AuditHmac.compute(canary)
      assert.strictEqual(event.hmac?.token, mac)
      const lines = yield* control.lines(event.stream)
      assert.isFalse(lines.join("\n").includes(canary))
      const found = yield* reader.query({ hmac: mac })
      assert.strictEqual(found.length, 1)
    }).pipe(Effect.provide(AuditLog.layerMemory))
  )

  it.live("fails with AuditUnavailable when the sink fails or hangs", () =>
    Effect.gen(function* () {
      const log = yield* AuditLog.AuditLog
      const control = yield* AuditSink.MemorySink
      yield* control.setMode("fail")
      const failed = yield* Effect.exit(log.append(input(1)))
      assert.isTrue(Exit.isFailure(failed))
      yield* control.setMode("hang")
      const started = Date.now()
      const hung = yield* Effect.flip(log.append(input(2)))
      assert.strictEqual(hung._tag, "AuditUnavailable")
      assert.isBelow(Date.now() - started, 5_000)
      yield* control.setMode("ok")
      const ok = yield* log.append(input(3))
      assert.strictEqual(ok.seq, 1)
    }).pipe(Effect.provide(AuditLog.layerMemoryWith({ appendTimeout: "200 millis" })))
  )
})
