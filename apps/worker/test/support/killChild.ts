/**
 * Run `jobChild.ts` in a real child process and SIGKILL it at a moment the test chooses by
 * observing the child's traffic (a fake upstream holding one request), never after a sleep.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Path from "node:path"
import { Duration, Effect, type Scope } from "effect"
import type { Spec } from "./jobChild.js"

const here = Path.dirname(new URL(import.meta.url).pathname)
const packageDir = Path.join(here, "..", "..")

export interface Exit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export const exited = (child: ChildProcess): Effect.Effect<Exit> =>
  Effect.async<Exit>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resume(Effect.succeed({ code: child.exitCode, signal: child.signalCode }))
      return
    }
    child.once("exit", (code, signal) => resume(Effect.succeed({ code, signal })))
  })

export interface Outcome {
  /** The fake held the chosen request before the child ended (or the wait timed out). */
  readonly held: boolean
  readonly exit: Exit
  /** The child's stdout and stderr. */
  readonly output: string
}

/**
 * Starts the child with `spec`, calls `arm` with the callback the fake must call once it holds
 * the chosen request, waits for that (at most `timeout`), then SIGKILLs the child and waits for
 * it to end. The child is killed when the scope closes, whatever happens.
 */
export const killWhenHeld = (
  spec: Spec,
  arm: (onHeld: () => void) => void,
  timeout: Duration.DurationInput = "20 seconds"
): Effect.Effect<Outcome, never, Scope.Scope> =>
  Effect.gen(function* () {
    let onHeld: () => void = () => {}
    const held = new Promise<void>((resolve) => {
      onHeld = resolve
    })
    arm(() => onHeld())
    // The worker itself, not a launcher: SIGKILL must hit the process that holds the store.
    const child = spawn(
      process.execPath,
      ["--import", "tsx", Path.join(here, "jobChild.ts"), JSON.stringify(spec)],
      { cwd: packageDir, stdio: ["ignore", "pipe", "pipe"] }
    )
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
      })
    )
    let output = ""
    child.stdout?.on("data", (b: Buffer) => {
      output += b.toString()
    })
    child.stderr?.on("data", (b: Buffer) => {
      output += b.toString()
    })
    const first = yield* Effect.raceFirst(
      Effect.as(
        Effect.promise(() => held),
        "held" as const
      ),
      Effect.as(exited(child), "exited" as const)
    ).pipe(
      Effect.timeoutTo({
        duration: Duration.decode(timeout),
        onTimeout: () => "timeout" as const,
        onSuccess: (x) => x
      })
    )
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
    const exit = yield* exited(child)
    return { held: first === "held", exit, output }
  })
