/**
 * The standalone worker process (`tsx src/main.ts`; the CLI's `aap worker` runs
 * `Standalone.run` the same way). The only `runMain` of this package.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Effect, Option } from "effect"
import * as Standalone from "./Standalone.js"

const program = Standalone.run
NodeRuntime.runMain(
  program.pipe(
    Effect.tapErrorCause((cause) =>
      Effect.sync(() => {
        const failure = Cause.failureOption(cause)
        process.stderr.write(
          Option.isSome(failure) && failure.value._tag === "StartError"
            ? `aap worker: ${failure.value.message}\n`
            : `aap worker: stopped on an unexpected error\n${Cause.pretty(cause)}\n`
        )
      })
    )
  ),
  // Start errors are one line above; anything else is printed in full there too.
  { disableErrorReporting: true }
)
