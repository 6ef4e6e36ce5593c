import { AuditKeys, AuditLog, AuditReader, AuditSink } from "@aap/audit"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Logger } from "effect"
import * as ChainVerification from "../src/ChainVerification.js"
import * as Metrics from "../src/WorkerMetrics.js"
import { WorkerMetrics } from "../src/WorkerMetrics.js"

const audit = Layer.mergeAll(AuditLog.layerWith({ instanceId: "broker" }), AuditReader.layer).pipe(
  Layer.provideMerge(AuditSink.layerMemory),
  Layer.provideMerge(AuditKeys.layerEphemeral)
)

describe("ChainVerification", () => {
  it.live("a break raises the gauge and logs an error naming the stream and seq; healing lowers it", () => {
    const logs: Array<{ level: string; message: string }> = []
    const capture = Logger.replace(
      Logger.defaultLogger,
      Logger.make(({ logLevel, message }) => {
        logs.push({
          level: logLevel.label,
          message: Array.isArray(message) ? message.join(" ") : String(message)
        })
      })
    )
    return Effect.gen(function* () {
      const log = yield* AuditLog.AuditLog
      const stream = yield* log.stream
      for (let i = 0; i < 5; i++) {
        yield* log.append({
          actor: { type: "system", id: "t" },
          action: "catalog.loaded",
          outcome: "success",
          details: { i }
        })
      }
      const verify = ChainVerification.make()
      const metrics = yield* WorkerMetrics
      assert.deepStrictEqual(yield* verify, { streams: 1, breaks: [] })

      const control = yield* AuditSink.MemorySink
      const original = yield* control.lines(stream)
      const tampered = [...original]
      tampered[2] = (tampered[2] ?? "").replace('"i":2', '"i":7')
      yield* control.setLines(stream, tampered)
      const broken = yield* verify
      assert.deepStrictEqual(broken.breaks, [{ stream, seq: 3, reason: "hash-mismatch" }])
      const labels = { stream, seq: "3", reason: "hash-mismatch" }
      assert.strictEqual(yield* metrics.get("aap_worker_audit_chain_breaks", labels), 1)
      const errors = logs.filter((l) => l.level === "ERROR")
      assert.strictEqual(errors.length, 1)
      assert.include(errors[0]?.message ?? "", stream)
      assert.include(errors[0]?.message ?? "", "seq 3")
      assert.include(
        yield* metrics.render,
        `aap_worker_audit_chain_breaks{reason="hash-mismatch",seq="3",stream="${stream}"} 1`
      )
      assert.strictEqual(yield* metrics.get("aap_worker_audit_verify_runs_total", { result: "broken" }), 1)

      yield* control.setLines(stream, original)
      assert.deepStrictEqual((yield* verify).breaks, [])
      assert.strictEqual(yield* metrics.get("aap_worker_audit_chain_breaks", labels), 0)
    }).pipe(Effect.provide(Layer.mergeAll(audit, Metrics.layer)), Effect.provide(capture))
  })
})
