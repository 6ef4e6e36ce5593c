/**
 * The embedded engine in a process of its own, for `BENCH_ENGINE=process` in `vault.ts`: the
 * benchmark's CPU time then covers the client side only (SDK, vault, Effect), as against a
 * remote DynamoDB, instead of client and engine together. Sends its endpoint to the parent
 * over IPC and runs until the parent goes away.
 */
import { Engine } from "@aap/local-stack"
import { Effect } from "effect"

process.on("disconnect", () => process.exit(0))

Effect.runPromise(
  Effect.scoped(
    Effect.gen(function* () {
      const engine = yield* Engine.dynamo()
      process.send?.(engine.endpoint)
      return yield* Effect.never
    })
  )
).catch((error) => {
  process.stderr.write(`engine failed: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
})
