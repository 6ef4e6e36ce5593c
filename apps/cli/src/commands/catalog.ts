/**
 * `aap catalog …`: operator commands on the capability catalog. Local only (no broker).
 */

import { Catalog, CatalogFile } from "@aap/catalog"
import { Args, Command, Options } from "@effect/cli"
import type { FileSystem, Path } from "@effect/platform"
import { Config, Console, Effect, Option } from "effect"
import { ExitCode } from "../ExitCode.js"

/** `FILE`, else `$AAP_CATALOG`, else `examples/catalog.yaml` relative to the working directory. */
export const resolveCatalogPath = (file: Option.Option<string>) =>
  Option.match(file, {
    onSome: Effect.succeed,
    onNone: () => Config.string("AAP_CATALOG").pipe(Config.withDefault("examples/catalog.yaml"))
  })

const summary = (catalog: Catalog.Catalog) => {
  const tiers = { low: 0, medium: 0, high: 0, critical: 0 }
  for (const capability of catalog.capabilities) tiers[capability.tier]++
  return {
    agents: catalog.agents.length,
    operators: catalog.operators.length,
    capabilities: catalog.capabilities.length,
    tiers
  }
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`

const file = Args.text({ name: "FILE" }).pipe(
  Args.withDescription("catalog file (default: $AAP_CATALOG, else examples/catalog.yaml)"),
  Args.optional
)
const json = Options.boolean("json").pipe(Options.withDescription("print the result as JSON"))

export const validate = Command.make("validate", { file, json }, ({ file, json }) =>
  Effect.gen(function* () {
    if (Option.isSome(file) && file.value.startsWith("-")) {
      yield* Console.error(`aap: unknown option ${file.value} (see aap catalog validate --help)`)
      return yield* new ExitCode({ code: 2 })
    }
    const path = yield* resolveCatalogPath(file)
    const result = yield* CatalogFile.load(path).pipe(Effect.either)
    if (result._tag === "Right") {
      const s = summary(result.right)
      if (json) yield* Console.log(JSON.stringify({ file: path, valid: true, ...s }))
      else {
        const tiers = Object.entries(s.tiers)
          .filter(([, n]) => n > 0)
          .map(([tier, n]) => `${tier} ${n}`)
          .join(", ")
        yield* Console.log(
          `${path}: valid (${plural(s.agents, "agent")}, ${plural(s.operators, "operator")}, ${plural(s.capabilities, "capability").replace("capabilitys", "capabilities")}${tiers === "" ? "" : `: ${tiers}`})`
        )
      }
      return
    }
    const error = result.left
    if (json) {
      const issues =
        error._tag === "CatalogInvalid"
          ? error.issues.map(({ line, column, path, message }) => ({ line, column, path, message }))
          : [{ line: 0, column: 0, path: "", message: error.message }]
      yield* Console.log(JSON.stringify({ file: path, valid: false, issues }))
    } else if (error._tag === "CatalogInvalid") {
      for (const issue of error.issues) yield* Console.log(Catalog.formatIssue(issue))
      yield* Console.log(`${path}: ${plural(error.issues.length, "error")}`)
    } else {
      yield* Console.error(`aap: ${error.message}`)
    }
    return yield* new ExitCode({ code: 1 })
  })
).pipe(
  Command.withDescription(
    "Check a catalog file: shape, references, TTL ceilings, approvals, templates. Exit 0 when valid, 1 listing every error as file:line:column path: message."
  )
)

export const catalog = Command.make("catalog").pipe(
  Command.withDescription("Work with the capability catalog"),
  Command.withSubcommands([validate])
)

/** What the commands in this group need from the environment. */
export type Requirements = FileSystem.FileSystem | Path.Path
