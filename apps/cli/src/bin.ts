/**
 * Entry point of the `aap` binary: the only place an Effect is run (NodeRuntime.runMain).
 */
import { ValidationError } from "@effect/cli"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Console, Effect, Exit } from "effect"
import { run } from "./Cli.js"
import { ExitCode } from "./ExitCode.js"

const program = run(process.argv).pipe(
  Effect.catchAllCause((cause) => {
    const failure = Cause.failureOption(cause)
    if (failure._tag === "Some") {
      const error = failure.value
      // Commands print their own results; @effect/cli prints usage errors itself.
      if (error instanceof ExitCode) return Effect.sync(() => (process.exitCode = error.code))
      if (ValidationError.isValidationError(error)) return Effect.sync(() => (process.exitCode = 2))
      return Console.error(`aap: ${error instanceof Error ? error.message : String(error)}`).pipe(
        Effect.zipRight(Effect.sync(() => (process.exitCode = 1)))
      )
    }
    if (Cause.isInterruptedOnly(cause)) return Effect.sync(() => (process.exitCode = 130))
    return Console.error(`aap: unexpected error\n${Cause.pretty(cause)}`).pipe(
      Effect.zipRight(Effect.sync(() => (process.exitCode = 70)))
    )
  }),
  Effect.provide(NodeContext.layer)
)

NodeRuntime.runMain(program, {
  disableErrorReporting: true,
  teardown: (exit, onExit) =>
    onExit(Exit.isFailure(exit) ? 1 : ((process.exitCode as number | undefined) ?? 0))
})
