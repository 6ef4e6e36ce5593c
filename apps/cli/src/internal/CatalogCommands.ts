/**
 * `aap catalog validate|show`: loaded lazily (the catalog context brings the YAML parser and
 * the Effect Schema machinery).
 */
import { Catalog, CatalogFile } from "@aap/catalog"
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

export const validate = ({ file, json }: { readonly file: Option.Option<string>; readonly json: boolean }) =>
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

const seconds = (n: number) => (n % 3600 === 0 ? `${n / 3600}h` : n % 60 === 0 ? `${n / 60}m` : `${n}s`)

const describeBacking = (b: Catalog.Backing): string => {
  switch (b.type) {
    case "bearer-token":
      return `bearer-token ${b.secret} → $${b.env}${b.proxy === undefined ? "" : " (proxy only)"}`
    case "aws-sts":
      return `aws-sts ${b.roleArn} (${b.region})`
    case "ssh-certificate":
      return `ssh-certificate principals ${b.principals.join(",")}`
    case "wrapped-command":
      return `wrapped-command ${b.command.join(" ")}`
  }
}

export const show = ({ file, json }: { readonly file: Option.Option<string>; readonly json: boolean }) =>
  Effect.gen(function* () {
    const path = yield* resolveCatalogPath(file)
    const result = yield* CatalogFile.load(path).pipe(Effect.either)
    if (result._tag === "Left") {
      const error = result.left
      if (error._tag === "CatalogInvalid") {
        for (const issue of error.issues) yield* Console.error(Catalog.formatIssue(issue))
        yield* Console.error(
          `aap: ${path} is invalid (${error.issues.length} errors); see aap catalog validate`
        )
      } else yield* Console.error(`aap: ${error.message}`)
      return yield* new ExitCode({ code: 1 })
    }
    const catalog = result.right
    const rows = catalog.capabilities.map((c) => ({
      id: c.id,
      tier: c.tier,
      agents: [...c.agents],
      ttl: { default: c.ttl.default, max: c.ttl.max },
      approvals: Catalog.requiredApprovals(c),
      backing: c.backing.type,
      ...(c.description === undefined ? {} : { description: c.description })
    }))
    if (json) {
      return yield* Console.log(
        JSON.stringify(
          {
            file: path,
            agents: catalog.agents.map((a) => ({ id: a.id, wallet: a.wallet })),
            operators: catalog.operators.map((o) => o.id),
            capabilities: rows
          },
          null,
          2
        )
      )
    }
    yield* Console.log(`${path}`)
    yield* Console.log(`agents:    ${catalog.agents.map((a) => `${a.id} (wallet ${a.wallet})`).join(", ")}`)
    yield* Console.log(`operators: ${catalog.operators.map((o) => o.id).join(", ")}`)
    yield* Console.log("capabilities:")
    for (const c of catalog.capabilities) {
      const approvals = Catalog.requiredApprovals(c)
      yield* Console.log(
        `  ${c.id.padEnd(24)} ${c.tier.padEnd(8)} ttl ${seconds(c.ttl.default)}/${seconds(c.ttl.max)}  ${approvals > 0 ? `${approvals} approval${approvals === 1 ? "" : "s"}` : "auto-granted"}  agents ${c.agents.join(",")}`
      )
      yield* Console.log(`  ${"".padEnd(24)} ${describeBacking(c.backing)}`)
    }
  })
