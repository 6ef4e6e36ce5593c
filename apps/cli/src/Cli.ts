/**
 * The `aap` command tree. Each command group lives in `src/commands/<group>.ts` and is added
 * here; `bin.ts` is the only place that runs it. Command definitions are light: whatever talks
 * to the broker, the keyring or the AWS SDK is loaded with `import()` when a command runs
 * (ADR 0061), so `aap --version` and `aap --help` load only the small entry chunk.
 */
import { Command } from "@effect/cli"
import { agent, login } from "./commands/agent.js"
import { audit } from "./commands/audit.js"
import { aws } from "./commands/aws.js"
import { catalog } from "./commands/catalog.js"
import { demo } from "./commands/demo.js"
import { exec } from "./commands/exec.js"
import { keys } from "./commands/keys.js"
import { secret } from "./commands/secret.js"
import { serve, worker } from "./commands/serve.js"
import { session } from "./commands/session.js"
import { version as packageVersion } from "./Overview.js"

export const version: string = packageVersion

export const aap = Command.make("aap").pipe(
  Command.withDescription("Agent Access Plane: short-lived, audited credentials for AI agents"),
  Command.withSubcommands([
    catalog,
    keys,
    secret,
    agent,
    login,
    session,
    exec,
    aws,
    audit,
    serve,
    worker,
    demo
  ])
)

/** Parse `process.argv` (node and script first, as Node passes them) and run the matching command. */
export const run = Command.run(aap, { name: "aap", version })
