/**
 * `aap exec CAPABILITY [--ttl D] -- CMD ARGS...` (agents).
 */
import { Args, Command, Options } from "@effect/cli"
import { Console, Effect } from "effect"
import { ExitCode } from "../ExitCode.js"
import * as Settings from "../internal/Settings.js"
import { connection, ttlOption, ttlSeconds } from "./common.js"

export const exec = Command.make(
  "exec",
  {
    capability: Args.text({ name: "CAPABILITY" }).pipe(
      Args.withDescription("capability id from the catalog")
    ),
    command: Args.text({ name: "CMD" }).pipe(
      Args.withDescription("the command and its arguments, after --; run directly, without a shell"),
      Args.atLeast(1)
    ),
    ttl: ttlOption,
    proxy: Options.boolean("proxy").pipe(
      Options.withDescription(
        "only a capability served through the broker's egress proxy: CMD gets the proxy URL in the SDK's base-URL variable (OPENAI_BASE_URL, ANTHROPIC_BASE_URL, OPENROUTER_BASE_URL...) and a proxy token in place of the key; any other capability is refused before a session is requested. For a capability in the forward mode (proxy.connect in the catalog) CMD also gets HTTPS_PROXY/https_proxy (http://<session>:<token>@<broker>), NO_PROXY for the broker, and, when the broker intercepts TLS, NODE_EXTRA_CA_CERTS, SSL_CERT_FILE, CURL_CA_BUNDLE and REQUESTS_CA_BUNDLE pointing at temporary files holding the broker's CA certificate"
      )
    ),
    ...connection
  },
  (o) =>
    Effect.gen(function* () {
      const ttl = yield* ttlSeconds(o.ttl)
      const conn = yield* Settings.resolve(o, "agent").pipe(
        Effect.catchAll((e) =>
          Effect.zipRight(Console.error(`aap: ${e.message}`), new ExitCode({ code: 125 }))
        )
      )
      const E = yield* Effect.promise(() => import("../internal/Exec.js"))
      const code = yield* E.exec(conn, o.capability, ttl, o.command, { proxyOnly: o.proxy }).pipe(
        Effect.catchAll((e) =>
          Effect.zipRight(Console.error(`aap exec: ${e.message}`), Effect.succeed(e.code))
        )
      )
      return yield* new ExitCode({ code })
    })
).pipe(
  Command.withDescription(
    "Run CMD with a capability's credential in its environment: requests the session (waits for approval if needed), starts CMD without a shell, masks the secret in its output, forwards signals, revokes the session when CMD ends, and exits with CMD's exit code (125: aap failed before CMD ran, 126/127: CMD not executable / not found)."
  )
)
