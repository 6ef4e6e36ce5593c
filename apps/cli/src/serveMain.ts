/**
 * `aap serve` as its own program (`dist/serve.mjs`, ADR 0061): `bin.ts` hands over to it so the
 * broker, the embedded engine and the AWS SDK are bundled apart from the client commands, and
 * the broker has the process (and its signals) to itself.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect } from "effect"
import { serve } from "./internal/Serve.js"

const FLAGS: Record<string, string> = {
  "--listen": "AAP_LISTEN",
  "--home": "AAP_HOME",
  "--catalog": "AAP_CATALOG"
}

/** Parse `serve [--listen HOST:PORT] [--home DIR] [--catalog FILE]` (also `--flag=value`). */
export const parseFlags = (
  args: ReadonlyArray<string>
): { env: Record<string, string> } | { error: string } => {
  const env: Record<string, string> = {}
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? ""
    const [flag, inline] = arg.includes("=")
      ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)]
      : [arg, undefined]
    const name = FLAGS[flag]
    if (name === undefined) return { error: `unknown argument ${arg} (see aap serve --help)` }
    const value = inline ?? args[++i]
    if (value === undefined || value === "") return { error: `${flag} needs a value` }
    env[name] = value
  }
  return { env }
}

/**
 * The AWS SDK warns on every start that Node 20 support ends in 2027 (ADR 0004 pins Node 20);
 * that one warning is dropped, every other warning is kept.
 */
const quietNodeVersionWarning = () => {
  const emit = process.emitWarning.bind(process)
  process.emitWarning = ((warning: string | Error, ...rest: Array<unknown>) => {
    const type = typeof rest[0] === "string" ? rest[0] : (rest[0] as { type?: string } | undefined)?.type
    if (
      type === "NodeVersionSupportWarning" ||
      (warning instanceof Error && warning.name === "NodeVersionSupportWarning")
    ) {
      return
    }
    ;(emit as (...args: Array<unknown>) => void)(warning, ...rest)
  }) as typeof process.emitWarning
}

export const main = (args: ReadonlyArray<string>): void => {
  const parsed = parseFlags(args)
  if ("error" in parsed) {
    process.stderr.write(`aap serve: ${parsed.error}\n`)
    process.exitCode = 2
    return
  }
  Object.assign(process.env, parsed.env)
  quietNodeVersionWarning()
  NodeRuntime.runMain(
    serve.pipe(
      Effect.catchAll((e) =>
        Effect.sync(() => {
          process.stderr.write(`aap serve: ${e.message}\n`)
          process.exitCode = 2
        })
      )
    ),
    {
      disableErrorReporting: true,
      // Stopped by SIGINT/SIGTERM after draining: a clean exit.
      teardown: (_exit, onExit) => onExit(typeof process.exitCode === "number" ? process.exitCode : 0)
    }
  )
}
