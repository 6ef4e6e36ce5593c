/**
 * `aap aws credential-process CAPABILITY` (agents): the `credential_process` JSON for
 * `~/.aws/config`, from an `aws-sts` capability.
 */
import { Args, Command } from "@effect/cli"
import { Console, Effect } from "effect"
import { ExitCode } from "../ExitCode.js"
import * as Settings from "../internal/Settings.js"
import { connection, ttlOption, ttlSeconds } from "./common.js"

export const credentialProcess = Command.make(
  "credential-process",
  {
    capability: Args.text({ name: "CAPABILITY" }).pipe(Args.withDescription("an aws-sts capability id")),
    ttl: ttlOption,
    ...connection
  },
  (o) =>
    Effect.gen(function* () {
      const ttl = yield* ttlSeconds(o.ttl)
      const conn = yield* Settings.resolve(o, "agent")
      const E = yield* Effect.promise(() => import("../internal/Exec.js"))
      const json = yield* E.credentialProcess(conn, o.capability, ttl).pipe(
        Effect.catchAll((e) =>
          Effect.zipRight(
            Console.error(`aap: ${e.message}`),
            new ExitCode({ code: e._tag === "ExecError" ? 1 : e.code })
          )
        )
      )
      yield* Console.log(JSON.stringify(json))
    })
).pipe(
  Command.withDescription(
    "Print AWS credential_process JSON (Version 1) for an aws-sts capability. In ~/.aws/config: credential_process = aap aws credential-process memory-s3"
  )
)

export const aws = Command.make("aws").pipe(
  Command.withDescription("AWS integration"),
  Command.withSubcommands([credentialProcess])
)
