import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Layer, Redacted, TestClock } from "effect"
import { AuditKeys, AuditLog, AuditReader, AuditSink } from "../src/index.js"
import { input } from "./AuditSinkConformance.js"

const memory = (options: AuditLog.Options = {}) =>
  AuditLog.layerMemoryWith({ appendTimeout: "1 second", ...options })

describe("AuditLog writer", () => {
  it.effect("a hanging sink fails appends at the timeout (TestClock), and nothing hangs", () =>
    Effect.gen(function* () {
      const log = yield* AuditLog.AuditLog
      const control = yield* AuditSink.MemorySink
      yield* control.setMode("hang")
      const fibers = yield* Effect.forEach([1, 2, 3], (i) => Effect.fork(log.append(input(i))))
      yield* TestClock.adjust("999 millis")
      for (const fiber of fibers)
        assert.isNull(yield* Fiber.poll(fiber).pipe(Effect.map((o) => (o._tag === "Some" ? o : null))))
      yield* TestClock.adjust("200 millis")
      for (const fiber of fibers) {
        const exit = yield* Fiber.await(fiber)
        assert.isTrue(Exit.isFailure(exit))
        if (Exit.isFailure(exit)) {
          const error = Cause.failureOption(exit.cause)
          assert.strictEqual(error._tag === "Some" ? error.value._tag : "none", "AuditUnavailable")
        }
      }
    }).pipe(Effect.provide(memory()))
  )

  it.live("a failing sink fails the append at once, and the log recovers on a new stream", () =>
    Effect.gen(function* () {
      const log = yield* AuditLog.AuditLog
      const reader = yield* AuditReader.AuditReader
      const control = yield* AuditSink.MemorySink
      yield* log.append(input(1))
      const before = yield* log.stream
      yield* control.setMode("fail")
      const error = yield* Effect.flip(log.append(input(2)))
      assert.strictEqual(error._tag, "AuditUnavailable")
      assert.strictEqual(error.message, "audit sink memory write failed")
      yield* control.setMode("ok")
      const after = yield* log.append(input(3))
      assert.notStrictEqual(after.stream, before)
      assert.strictEqual(after.seq, 1)
      const report = yield* reader.verify()
      assert.isTrue(report.ok, JSON.stringify(report.firstBreak))
      assert.deepStrictEqual(report.streams.map((s) => s.lastSeq).sort(), [1, 1])
    }).pipe(Effect.provide(memory()))
  )

  it.live("an append that timed out before its batch started is never written", () =>
    Effect.gen(function* () {
      const log = yield* AuditLog.AuditLog
      const reader = yield* AuditReader.AuditReader
      const control = yield* AuditSink.MemorySink
      yield* control.setMode("hang")
      // the first append takes the (hanging) write; the next two wait in the queue and time out
      const results = yield* Effect.forEach([1, 2, 3], (i) => Effect.either(log.append(input(i))), {
        concurrency: "unbounded"
      })
      assert.isTrue(results.every((r) => r._tag === "Left"))
      yield* control.setMode("ok")
      const ok = yield* log.append(input(4))
      const events = yield* reader.query({ limit: 100 })
      assert.deepStrictEqual(
        events.map((e) => e.details.n),
        [4]
      )
      assert.strictEqual(ok.seq, 1)
    }).pipe(Effect.provide(memory({ appendTimeout: "150 millis" })))
  )

  it.live("a full backlog fails appends at once", () =>
    Effect.gen(function* () {
      const log = yield* AuditLog.AuditLog
      const control = yield* AuditSink.MemorySink
      yield* control.setMode("hang")
      const fibers = yield* Effect.forEach([1, 2, 3], (i) => Effect.fork(log.append(input(i))))
      yield* Effect.sleep("10 millis")
      const error = yield* Effect.flip(log.append(input(4)))
      assert.strictEqual(error.message, "audit backlog is full")
      yield* Effect.forEach(fibers, Fiber.interrupt)
    }).pipe(Effect.provide(memory({ maxPending: 3, appendTimeout: "1 second" })))
  )

  it.live("keys that fail make the append fail with AuditUnavailable, without the secret", () => {
    const canary = "CANARY-sk-live-6a1f0e"
    const failingKeys = Layer.succeed(
      AuditKeys.AuditKeys,
      AuditKeys.AuditKeys.of({
        hmac: () => Effect.fail(new AuditKeys.AuditKeysError({ message: "keyring unreadable" })),
        sign: () => Effect.fail(new AuditKeys.AuditKeysError({ message: "keyring unreadable" })),
        publicKeys: Effect.succeed([])
      })
    )
    return Effect.gen(function* () {
      const log = yield* AuditLog.AuditLog
      const exit = yield* Effect.exit(
        log.append({ ...input(1), sensitive: { token: Redacted.make(canary) } })
      )
      assert.isTrue(Exit.isFailure(exit))
      assert.notInclude(JSON.stringify(exit), canary)
      assert.notInclude(String(Cause.pretty(Exit.isFailure(exit) ? exit.cause : Cause.empty)), canary)
      const plain = yield* log.append(input(2))
      assert.strictEqual(plain.seq, 1)
    }).pipe(
      Effect.provide(
        AuditLog.layerWith({ instanceId: "keys" }).pipe(
          Layer.provide(AuditSink.layerMemory),
          Layer.provide(failingKeys)
        )
      )
    )
  })

  it.live("invalid input is a defect with a clear message, not a stored record", () =>
    Effect.gen(function* () {
      const log = yield* AuditLog.AuditLog
      const bad = [
        { ...input(1), details: { n: Number.NaN } },
        { ...input(1), details: { nested: {} } },
        { ...input(1), action: "Not An Action" },
        { ...input(1), hmac: { token: "not-hex" } }
      ]
      for (const candidate of bad) {
        // deliberately bypass the static types, as a JavaScript caller could
        const exit = yield* Effect.exit(
          log.append(
            JSON.parse(
              JSON.stringify(candidate, (_k, v) => (Number.isNaN(v) ? "__nan__" : v)),
              (_k, v) => (v === "__nan__" ? Number.NaN : v)
            )
          )
        )
        assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause), JSON.stringify(candidate))
      }
      assert.strictEqual((yield* log.append(input(2))).seq, 1)
    }).pipe(Effect.provide(memory()))
  )

  it.live("after close, appends fail and the stream carries a final checkpoint", () =>
    Effect.gen(function* () {
      const reader = yield* AuditReader.AuditReader
      const closed = yield* Effect.scoped(
        Effect.gen(function* () {
          const context = yield* Layer.build(AuditLog.layerWith({ instanceId: "close" }))
          const log = Layer.succeedContext(context)
          return yield* Effect.gen(function* () {
            const l = yield* AuditLog.AuditLog
            yield* l.append(input(1))
            return l
          }).pipe(Effect.provide(log))
        })
      )
      const error = yield* Effect.flip(closed.append(input(2)))
      assert.strictEqual(error.message, "audit log is closed")
      const report = yield* reader.verify()
      const stream = report.streams.find((s) => s.stream.startsWith("close-"))
      assert.isTrue(stream?.sealed)
      assert.strictEqual(stream?.checkpointSeq, 1)
    }).pipe(
      Effect.provide(
        Layer.mergeAll(AuditReader.layer).pipe(
          Layer.provideMerge(AuditSink.layerMemory),
          Layer.provideMerge(AuditKeys.layerEphemeral)
        )
      )
    )
  )

  it.live("periodic checkpoints seal the head while the stream is open", () =>
    Effect.gen(function* () {
      const log = yield* AuditLog.AuditLog
      const reader = yield* AuditReader.AuditReader
      yield* log.append(input(1))
      yield* log.append(input(2))
      yield* Effect.sleep("120 millis")
      const report = yield* reader.verifyStream(yield* log.stream)
      assert.strictEqual(report.report.checkpointSeq, 2)
      assert.isFalse(report.report.sealed)
    }).pipe(Effect.provide(memory({ checkpointInterval: "30 millis" })))
  )

  it.live("stream ids are <instance>-<ULID> and differ on every start", () =>
    Effect.gen(function* () {
      const ids = new Set<string>()
      for (let i = 0; i < 5; i++) {
        const id = yield* Effect.gen(function* () {
          return yield* (yield* AuditLog.AuditLog).stream
        }).pipe(Effect.provide(memory({ instanceId: "Broker 1.example" })))
        assert.match(id, /^broker-1-example-[0-9A-HJKMNP-TV-Z]{26}$/)
        ids.add(id)
      }
      assert.strictEqual(ids.size, 5)
    })
  )
})
