/**
 * `aap session request|list|show|approve|deny|revoke`: agents request and revoke their own
 * sessions; operators list, inspect, approve, deny and revoke any.
 */
import type { Session as SessionModule } from "@aap/agent-coordination"
import { Args, Command, Options } from "@effect/cli"
import { Console, DateTime, Effect, Option } from "effect"
import { ExitCode } from "../ExitCode.js"
import {
  connection,
  json,
  loadClient,
  printJson,
  reason,
  ttlOption,
  ttlSeconds,
  withClient
} from "./common.js"

type Session = SessionModule.Session

const id = Args.text({ name: "SESSION" }).pipe(Args.withDescription("session id (ses_...)"))

const iso = (d: DateTime.Utc) => DateTime.formatIso(d)

/** The session as JSON (the wire shape). */
export const toJson = (s: Session) => ({
  id: s.id,
  agent: s.agent,
  wallet: s.wallet,
  capability: s.capability,
  tier: s.tier,
  status: s.status,
  version: s.version,
  ttlSeconds: s.ttlSeconds,
  createdAt: iso(s.createdAt),
  updatedAt: iso(s.updatedAt),
  expiresAt: iso(s.expiresAt),
  ...(s.activatedAt === undefined ? {} : { activatedAt: iso(s.activatedAt) }),
  ...(s.justification === undefined ? {} : { justification: s.justification }),
  breakGlass: s.breakGlass,
  requiredApprovals: s.requiredApprovals,
  approvals: s.approvals.map((a) => ({
    operator: a.operator,
    at: iso(a.at),
    ...(a.reason === undefined ? {} : { reason: a.reason })
  })),
  ...(s.ended === undefined
    ? {}
    : {
        ended: {
          by: s.ended.by,
          at: iso(s.ended.at),
          ...(s.ended.reason === undefined ? {} : { reason: s.ended.reason })
        }
      })
})

export const line = (s: Session) =>
  `${s.id}  ${s.status.padEnd(16)}  ${s.agent.padEnd(10)}  ${s.capability.padEnd(22)}  ${s.tier.padEnd(8)}  ${
    s.status === "pending_approval"
      ? `approvals ${s.approvals.length}/${s.requiredApprovals}, window until ${iso(s.expiresAt)}`
      : s.status === "active"
        ? `until ${iso(s.expiresAt)}`
        : `ended ${s.ended === undefined ? "" : iso(s.ended.at)}${s.ended?.reason === undefined ? "" : ` (${s.ended.reason})`}`
  }`

const details = (s: Session) =>
  [
    `session      ${s.id}`,
    `status       ${s.status}`,
    `agent        ${s.agent} (wallet ${s.wallet})`,
    `capability   ${s.capability} (${s.tier})`,
    `ttl          ${s.ttlSeconds}s`,
    `created      ${iso(s.createdAt)}`,
    `expires      ${iso(s.expiresAt)}`,
    ...(s.justification === undefined ? [] : [`justification ${s.justification}`]),
    `approvals    ${s.approvals.length}/${s.requiredApprovals}${s.approvals.map((a) => `\n  - ${a.operator} at ${iso(a.at)}${a.reason === undefined ? "" : `: ${a.reason}`}`).join("")}`,
    ...(s.ended === undefined
      ? []
      : [
          `ended        ${iso(s.ended.at)} by ${s.ended.by.type} ${s.ended.by.id}${s.ended.reason === undefined ? "" : `: ${s.ended.reason}`}`
        ])
  ].join("\n")

const show = (s: Session, asJson: boolean) => (asJson ? printJson(toJson(s)) : Console.log(line(s)))

/** Exit 1 when `--wait` ends in anything but `active` (ADR 0060). */
const decidedExit = (s: Session) => (s.status === "active" ? Effect.void : new ExitCode({ code: 1 }))

export const request = Command.make(
  "request",
  {
    capability: Args.text({ name: "CAPABILITY" }).pipe(
      Args.withDescription("capability id from the catalog")
    ),
    ttl: ttlOption,
    justification: Options.text("justification").pipe(
      Options.withDescription("why you need it (required for critical capabilities)"),
      Options.optional
    ),
    breakGlass: Options.boolean("break-glass").pipe(
      Options.withDescription("declare a break-glass request (critical tier)")
    ),
    wait: Options.boolean("wait").pipe(
      Options.withDescription("wait until the session is approved or denied (progress on a terminal)")
    ),
    json,
    ...connection
  },
  (o) =>
    Effect.gen(function* () {
      const ttl = yield* ttlSeconds(o.ttl)
      const W = yield* Effect.promise(() => import("../internal/Wait.js"))
      const session = yield* withClient(o, "agent", (client) =>
        Effect.gen(function* () {
          const created = yield* client.sessions.request({
            payload: {
              capability: o.capability,
              ...(Option.isSome(ttl) ? { ttlSeconds: ttl.value } : {}),
              ...(Option.isSome(o.justification) ? { justification: o.justification.value } : {}),
              ...(o.breakGlass ? { breakGlass: true } : {})
            }
          })
          return o.wait ? yield* W.untilDecided(client, created) : created
        })
      )
      yield* show(session, o.json)
      if (o.wait) yield* decidedExit(session)
    })
).pipe(
  Command.withDescription(
    "Request a session for a capability (agents). Low and medium tiers are active at once; high and critical wait for operator approval (--wait)."
  )
)

export const list = Command.make(
  "list",
  {
    status: Options.choice("status", ["pending_approval", "active", "expired", "revoked", "denied"]).pipe(
      Options.withDescription("only sessions in this state (default: pending_approval and active)"),
      Options.optional
    ),
    agent: Options.text("agent").pipe(
      Options.withDescription("only this agent's sessions"),
      Options.optional
    ),
    json,
    ...connection
  },
  (o) =>
    withClient(o, "operator", (client) =>
      Effect.gen(function* () {
        const fetchAll = (status: Option.Option<string>) =>
          Effect.gen(function* () {
            const out: Array<Session> = []
            let cursor: string | undefined
            do {
              const page = yield* client.sessions.list({
                urlParams: {
                  ...(Option.isSome(status) ? { status: status.value as Session["status"] } : {}),
                  ...(Option.isSome(o.agent) ? { agent: o.agent.value } : {}),
                  ...(cursor === undefined ? {} : { cursor })
                }
              })
              out.push(...page.sessions)
              cursor = page.cursor
            } while (cursor !== undefined)
            return out
          })
        const sessions =
          Option.isNone(o.status) && Option.isNone(o.agent)
            ? [
                ...(yield* fetchAll(Option.some("pending_approval"))),
                ...(yield* fetchAll(Option.some("active")))
              ]
            : yield* fetchAll(o.status)
        if (o.json) return yield* printJson({ sessions: sessions.map(toJson) })
        if (sessions.length === 0) return yield* Console.log("no sessions")
        for (const s of sessions) yield* Console.log(line(s))
      })
    )
).pipe(Command.withDescription("List sessions (operators). Without filters: the pending and active ones."))

export const showCommand = Command.make("show", { id, json, ...connection }, (o) =>
  withClient(o, "any", (client) =>
    Effect.flatMap(client.sessions.get({ path: { id: o.id } }), (s) =>
      o.json ? printJson(toJson(s)) : Console.log(details(s))
    )
  )
).pipe(Command.withDescription("Show one session (its agent, or any operator)."))

const decision = (verb: "approve" | "deny" | "revoke", role: "operator" | "any", description: string) =>
  Command.make(verb, { id, reason, json, ...connection }, (o) =>
    withClient(o, role, (client) =>
      Effect.flatMap(
        client.sessions[verb]({
          path: { id: o.id },
          payload: Option.isSome(o.reason) ? { reason: o.reason.value } : {}
        }),
        (s) => show(s, o.json)
      )
    )
  ).pipe(Command.withDescription(description))

export const session = Command.make("session").pipe(
  Command.withDescription("Request, inspect, approve, deny and revoke sessions"),
  Command.withSubcommands([
    request,
    list,
    showCommand,
    decision("approve", "operator", "Approve a pending session (operators; never the requesting agent)."),
    decision("deny", "operator", "Deny a pending session (operators)."),
    decision("revoke", "any", "Revoke a session (its agent, or any operator).")
  ])
)

export { loadClient }
