/**
 * `aap catalog validate|show`: operator commands on the capability catalog. Local only (no
 * broker). The work happens in `internal/CatalogCommands.ts`, loaded when a command runs.
 */
import { Args, Command, Options } from "@effect/cli"
import type { FileSystem, Path } from "@effect/platform"
import { Effect } from "effect"

const load = Effect.promise(() => import("../internal/CatalogCommands.js"))

const file = Args.text({ name: "FILE" }).pipe(
  Args.withDescription("catalog file (default: $AAP_CATALOG, else examples/catalog.yaml)"),
  Args.optional
)
const json = Options.boolean("json").pipe(Options.withDescription("print the result as JSON"))

export const validate = Command.make("validate", { file, json }, (input) =>
  Effect.flatMap(load, (C) => C.validate(input))
).pipe(
  Command.withDescription(
    "Check a catalog file: shape, references, TTL ceilings, approvals, templates. Exit 0 when valid, 1 listing every error as file:line:column path: message."
  )
)

export const show = Command.make("show", { file, json }, (input) =>
  Effect.flatMap(load, (C) => C.show(input))
).pipe(
  Command.withDescription(
    "Show a catalog file's agents, operators and capabilities (tier, TTLs, approvals, backing)."
  )
)

export const catalog = Command.make("catalog").pipe(
  Command.withDescription("Work with the capability catalog"),
  Command.withSubcommands([validate, show])
)

/** What the commands in this group need from the environment. */
export type Requirements = FileSystem.FileSystem | Path.Path
