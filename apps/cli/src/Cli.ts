/**
 * The `aap` command tree. Each command group lives in `src/commands/<group>.ts` and is added
 * here; `bin.ts` is the only place that runs it.
 */
import { Command } from "@effect/cli"
import packageJson from "../package.json" with { type: "json" }
import { catalog } from "./commands/catalog.js"

export const version: string = packageJson.version

export const aap = Command.make("aap").pipe(
  Command.withDescription("Agent Access Plane: short-lived, audited credentials for AI agents"),
  Command.withSubcommands([catalog])
)

/** Parse `process.argv` (node and script first, as Node passes them) and run the matching command. */
export const run = Command.run(aap, { name: "aap", version })
