/**
 * `aap agent invite ID` (operators) and `aap login --code CODE` (agents): enrolment with a
 * single-use link code (DESIGN §9).
 */
import { Args, Command, Options } from "@effect/cli"
import { Console, DateTime, Effect, Option, Redacted } from "effect"
import * as Settings from "../internal/Settings.js"
import { connection, json, loadClient, printJson, withClient } from "./common.js"

export const invite = Command.make(
  "invite",
  {
    id: Args.text({ name: "AGENT" }).pipe(Args.withDescription("agent id from the catalog")),
    json,
    ...connection
  },
  (o) =>
    withClient(o, "operator", (client) =>
      Effect.flatMap(client.linkCodes.issue({ path: { id: encodeURIComponent(o.id) } }), (issued) => {
        const code = Redacted.value(issued.code)
        return o.json
          ? printJson({ code, expiresAt: DateTime.formatIso(issued.expiresAt) })
          : Console.log(
              `${code}\n\nlink code for ${o.id}, single use, valid until ${DateTime.formatIso(issued.expiresAt)}.\nOn the agent's machine: aap login --code ${code}${o.url._tag === "Some" ? ` --url ${o.url.value}` : ""}`
            )
      })
    )
).pipe(Command.withDescription("Mint a single-use, 10-minute link code for an agent (operators)."))

export const agent = Command.make("agent").pipe(
  Command.withDescription("Enrol agents"),
  Command.withSubcommands([invite])
)

export const login = Command.make(
  "login",
  {
    code: Options.text("code").pipe(Options.withDescription("the link code from aap agent invite")),
    url: connection.url,
    json
  },
  (o) =>
    Effect.gen(function* () {
      const conn = yield* Settings.resolve({ url: o.url, tokenFile: Option.none() }, "agent").pipe(
        Effect.catchTag("SettingsError", () =>
          // A broken credentials file must not stop a fresh login from replacing it.
          Effect.succeed({
            url: Option.getOrElse(o.url, () => process.env.AAP_URL || Settings.DEFAULT_URL).replace(
              /\/+$/,
              ""
            ),
            token: Option.none(),
            tokenSource: "none"
          })
        )
      )
      const C = yield* loadClient
      const enrolment = yield* C.call({ ...conn, token: Option.none() }, (client) =>
        client.enrolment.redeem({ payload: { code: Redacted.make(o.code.trim()) } })
      )
      const file = yield* Settings.writeCredentials({
        url: conn.url,
        agent: enrolment.agent,
        token: Redacted.value(enrolment.token)
      })
      yield* o.json
        ? printJson({ agent: enrolment.agent, url: conn.url, credentials: file })
        : Console.log(`logged in to ${conn.url} as agent ${enrolment.agent}; token saved to ${file} (0600)`)
    })
).pipe(
  Command.withDescription(
    "Redeem a link code (agents): saves the agent token to $XDG_CONFIG_HOME/aap/credentials (else ~/.config/aap/credentials), mode 0600."
  )
)
