/**
 * `withDeadline`, the per-request timeout of the HTTP stack (ADR 0056): the outcomes of
 * `Effect.timeoutFail` with a plain timer and one child fiber.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, FiberRef } from "effect"
import { withDeadline } from "../src/internal/httpStack.js"

const timedOut = () => "timed out" as const
const ref = FiberRef.unsafeMake("unset")

describe("withDeadline", () => {
  it.effect("a value in time is returned with the fiber refs it set", () =>
    Effect.gen(function* () {
      const value = yield* Effect.as(FiberRef.set(ref, "set inside"), 42).pipe(withDeadline(1_000, timedOut))
      assert.strictEqual(value, 42)
      assert.strictEqual(yield* FiberRef.get(ref), "set inside")
    })
  )

  it.effect("an asynchronous value in time is returned", () =>
    Effect.gen(function* () {
      const value = yield* Effect.as(
        Effect.promise(() => new Promise((r) => setTimeout(r, 10))),
        "late"
      ).pipe(withDeadline(1_000, timedOut))
      assert.strictEqual(value, "late")
    })
  )

  it.effect("a failure or a defect in time is passed through", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(
        yield* Effect.exit(Effect.fail("boom").pipe(withDeadline(1_000, timedOut))),
        Exit.fail("boom")
      )
      const died = yield* Effect.exit(Effect.dieMessage("bug").pipe(withDeadline(1_000, timedOut)))
      assert.isTrue(Exit.isFailure(died) && !Exit.isInterrupted(died))
    })
  )

  it.effect("past the deadline the effect is interrupted (finalizers run) and the timeout error fails", () =>
    Effect.gen(function* () {
      let finalized = false
      const slow = Effect.never.pipe(
        Effect.ensuring(
          Effect.sync(() => {
            finalized = true
          })
        )
      )
      const exit = yield* Effect.exit(slow.pipe(withDeadline(30, timedOut)))
      assert.deepStrictEqual(exit, Exit.fail("timed out"))
      assert.isTrue(finalized)
    })
  )

  it.effect("interrupting the caller interrupts the effect", () =>
    Effect.gen(function* () {
      const started = yield* Deferred.make<void>()
      const interrupted = yield* Deferred.make<void>()
      const inner = Deferred.succeed(started, undefined).pipe(
        Effect.zipRight(Effect.never),
        Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))
      )
      const caller = yield* Effect.fork(inner.pipe(withDeadline(10_000, timedOut)))
      yield* Deferred.await(started)
      yield* Fiber.interrupt(caller)
      assert.isTrue(yield* Deferred.isDone(interrupted))
    })
  )
})
