/**
 * `aap serve` and `aap worker` as their own program (`dist/daemon.mjs`, ADR 0061): `bin.ts`
 * hands over to it so the broker, the worker, the embedded engine and the AWS SDK are bundled
 * apart from the client commands, and the long-running process owns its signals.
 */

import { Standalone } from "@aap/worker"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect } from "effect"
import { serve } from "./internal/Serve.js"

const SERVE_FLAGS: Record<string, string> = {
  "--listen": "AAP_LISTEN",
  "--home": "AAP_HOME",
  "--catalog": "AAP_CATALOG",
  "--worker": "AAP_WORKER_IN_PROCESS"
}
const WORKER_FLAGS: Record<string, string> = { "--home": "AAP_HOME", "--catalog": "AAP_CATALOG" }

/** Parse `[--listen HOST:PORT] [--home DIR] [--catalog FILE] [--worker auto|on|off]` (also `--flag=value`). */
export const parseFlags = (
  command: "serve" | "worker",
  args: ReadonlyArray<string>
): { env: Record<string, string> } | { error: string } => {
  const FLAGS = command === "serve" ? SERVE_FLAGS : WORKER_FLAGS
  const env: Record<string, string> = {}
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? ""
    const [flag, inline] = arg.includes("=")
      ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)]
      : [arg, undefined]
    const name = FLAGS[flag]
    if (name === undefined) return { error: `unknown argument ${arg} (see aap ${command} --help)` }
    const value = inline ?? args[++i]
    if (value === undefined || value === "") return { error: `${flag} needs a value` }
    env[name] = value
  }
  return { env }
}

export const main = (command: "serve" | "worker", args: ReadonlyArray<string>): void => {
  const parsed = parseFlags(command, args)
  if ("error" in parsed) {
    process.stderr.write(`aap ${command}: ${parsed.error}\n`)
    process.exitCode = 2
    return
  }
  Object.assign(process.env, parsed.env)
  const program: Effect.Effect<never, { readonly message: string }> =
    command === "serve" ? serve : Standalone.run
  NodeRuntime.runMain(
    program.pipe(
      Effect.catchAll((e) =>
        Effect.sync(() => {
          process.stderr.write(`aap ${command}: ${e.message}\n`)
          process.exitCode = 2
        })
      )
    ),
    {
      disableErrorReporting: true,
      // The broker logs JSON lines itself; the default pretty logger would print each twice.
      disablePrettyLogger: command === "serve",
      // Stopped by SIGINT/SIGTERM after draining: a clean exit.
      teardown: (_exit, onExit) => onExit(typeof process.exitCode === "number" ? process.exitCode : 0)
    }
  )
}
