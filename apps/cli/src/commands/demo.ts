/**
 * `aap demo` (also `pnpm demo`): a guided walk through the product against a running broker.
 */
import { Command, Options } from "@effect/cli"
import { Effect } from "effect"
import { connection } from "./common.js"

export const demo = Command.make(
  "demo",
  {
    ...connection,
    agent: Options.text("agent").pipe(
      Options.withDescription("agent to enrol (default codex)"),
      Options.withDefault("codex")
    )
  },
  (o) =>
    Effect.flatMap(
      Effect.promise(() => import("../internal/Demo.js")),
      (D) => D.run({ url: o.url, tokenFile: o.tokenFile }, o.agent)
    )
).pipe(
  Command.withDescription(
    "Walk through aap against a running broker (default http://127.0.0.1:8787, operator token from .aap/operator.token): enrol an agent, store a secret, request low and high tier sessions, approve, deliver, revoke, verify the audit log."
  )
)
