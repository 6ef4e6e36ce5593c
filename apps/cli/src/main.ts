/**
 * The `aap` program: parses the command line with @effect/cli and runs the command. The only
 * place an Effect is run (NodeRuntime.runMain). Every failure becomes one line on stderr and an
 * exit code (ADR 0060); a command that already printed its result fails with `ExitCode`.
 */
import { ValidationError } from "@effect/cli"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Console, Effect, Exit } from "effect"
import { run } from "./Cli.js"
import { ExitCode } from "./ExitCode.js"

const setCode = (code: number) => Effect.sync(() => (process.exitCode = code))

const program = run(process.argv).pipe(
  Effect.catchAllCause((cause) => {
    const failure = Cause.failureOption(cause)
    if (failure._tag === "Some") {
      const error: unknown = failure.value
      // Commands print their own results; @effect/cli prints usage errors itself.
      if (error instanceof ExitCode) return setCode(error.code)
      if (ValidationError.isValidationError(error)) return setCode(2)
      const tagged = error as { readonly message?: unknown; readonly code?: unknown }
      const code = typeof tagged?.code === "number" ? tagged.code : 1
      const message = typeof tagged?.message === "string" ? tagged.message : String(error)
      return Console.error(`aap: ${message.replace(/\s*\n\s*/g, " ")}`).pipe(Effect.zipRight(setCode(code)))
    }
    if (Cause.isInterruptedOnly(cause)) return setCode(130)
    return Console.error(`aap: unexpected error\n${Cause.pretty(cause)}`).pipe(Effect.zipRight(setCode(70)))
  }),
  Effect.provide(NodeContext.layer)
)

NodeRuntime.runMain(program, {
  disableErrorReporting: true,
  teardown: (exit, onExit) => {
    const code = process.exitCode
    if (typeof code === "number") return onExit(code)
    onExit(Exit.isFailure(exit) ? (Cause.isInterruptedOnly(exit.cause) ? 130 : 1) : 0)
  }
})
