/**
 * `aap audit tail|verify` (operators): read and check the broker's audit log.
 */
import { Command, Options } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import { ExitCode } from "../ExitCode.js"
import { connection, json, withClient } from "./common.js"

export const tail = Command.make(
  "tail",
  {
    limit: Options.integer("limit").pipe(
      Options.withDescription("how many events (default 20)"),
      Options.withDefault(20)
    ),
    session: Options.text("session").pipe(
      Options.withDescription("only this session's events"),
      Options.optional
    ),
    action: Options.text("action").pipe(
      Options.withDescription("only this action (e.g. credential.issued)"),
      Options.optional
    ),
    json,
    ...connection
  },
  (o) =>
    withClient(o, "operator", (client) =>
      Effect.gen(function* () {
        const page = yield* client.audit.list({
          urlParams: {
            limit: Math.max(1, Math.min(10_000, o.limit)),
            ...(Option.isSome(o.session) ? { session: o.session.value } : {}),
            ...(Option.isSome(o.action) ? { action: o.action.value } : {})
          }
        })
        const events = page.events.slice(-o.limit)
        if (o.json) {
          for (const e of events) yield* Console.log(JSON.stringify(e))
          return
        }
        if (events.length === 0) return yield* Console.log("no audit events")
        for (const e of events) {
          yield* Console.log(
            [
              String(e.ts),
              `${e.stream}#${e.seq}`,
              e.action,
              e.outcome,
              `${e.actor.type}:${e.actor.id}`,
              e.capability ?? "",
              e.session ?? "",
              e.reason === undefined ? "" : `(${e.reason})`
            ]
              .filter((s) => s !== "")
              .join("  ")
          )
        }
      })
    )
).pipe(
  Command.withDescription("Print the latest audit events (operators); --json prints one event per line.")
)

export const verify = Command.make("verify", { json, ...connection }, (o) =>
  withClient(o, "operator", (client) =>
    Effect.gen(function* () {
      const report = yield* client.audit.verify()
      if (o.json) yield* Console.log(JSON.stringify(report))
      else if (report.ok) {
        const records = report.streams.reduce((n, s) => n + s.records, 0)
        yield* Console.log(
          `audit log intact: ${report.streams.length} stream${report.streams.length === 1 ? "" : "s"}, ${records} record${records === 1 ? "" : "s"}`
        )
      } else {
        const b = report.firstBreak
        yield* Console.log(
          b === undefined
            ? "audit log BROKEN"
            : `audit log BROKEN: stream ${b.stream} at seq ${b.seq}: ${b.reason}: ${b.message}`
        )
      }
      if (!report.ok) return yield* new ExitCode({ code: 1 })
    })
  )
).pipe(
  Command.withDescription(
    "Verify every audit stream's hash chain (operators). Exit 1 at the first broken record."
  )
)

export const audit = Command.make("audit").pipe(
  Command.withDescription("Read and verify the audit log"),
  Command.withSubcommands([tail, verify])
)
