/**
 * `aap demo`: a newcomer's tour against a running broker, each step printed with what it
 * shows. Uses the operator token (`$AAP_HOME/operator.token` by default) and enrols a demo
 * agent in memory (nothing is written to the credentials file).
 */
import * as Crypto from "node:crypto"
import { Console, DateTime, Effect, Option, Redacted } from "effect"
import { ExitCode } from "../ExitCode.js"
import { type BrokerError, type Client, explain, make } from "./Client.js"
import * as Settings from "./Settings.js"

const bold = (s: string) => (process.stdout.isTTY && !process.env.NO_COLOR ? `\x1b[1m${s}\x1b[0m` : s)
const dim = (s: string) => (process.stdout.isTTY && !process.env.NO_COLOR ? `\x1b[2m${s}\x1b[0m` : s)

let stepNo = 0
const step = (title: string) => Console.log(`\n${bold(`${++stepNo}. ${title}`)}`)
const say = (line: string) => Console.log(`   ${line}`)

/** `sk-or-v1-1234…` → `sk-or…(32 chars)`: enough to recognise, never the value. */
const hint = (secret: string) => `${secret.slice(0, 5)}…(${secret.length} chars, masked)`

/** An OpenSSH public key line for a fresh Ed25519 key (the agent's ephemeral key). */
const ephemeralSshKey = () => {
  const { publicKey } = Crypto.generateKeyPairSync("ed25519")
  const raw = Buffer.from(publicKey.export({ format: "jwk" }).x ?? "", "base64url")
  const str = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b])
  return `ssh-ed25519 ${Buffer.concat([str(Buffer.from("ssh-ed25519")), str(raw)]).toString("base64")} aap-demo`
}

export const run = (flags: Settings.ConnectionFlags, agentId: string) =>
  Effect.gen(function* () {
    const operatorConn = yield* Settings.resolve(flags, "operator")
    if (Option.isNone(operatorConn.token)) {
      yield* Console.error(
        `aap demo: no operator token; start the broker first (pnpm start, or aap serve), which writes ${Settings.homeDir()}/operator.token`
      )
      return yield* new ExitCode({ code: 4 })
    }
    const fail = explain(operatorConn)
    const op = yield* make(operatorConn)
    const guard = <A, E>(effect: Effect.Effect<A, E>) => Effect.mapError(effect, fail)

    yield* Console.log(bold("aap demo: the Agent Access Plane in nine steps"))
    yield* say(dim(`broker ${operatorConn.url}, operator token from ${operatorConn.tokenSource}`))

    yield* step("The broker is up")
    const health = yield* guard(op.healthz())
    yield* say(
      `GET /healthz → ${health.status}, version ${health.version}, up ${Math.round(health.uptimeSeconds)}s`
    )

    yield* step(`Enrol the agent ${agentId} with a single-use link code`)
    const issued = yield* guard(op.linkCodes.issue({ path: { id: agentId } }))
    yield* say(
      `operator: aap agent invite ${agentId}   → link code ${hint(Redacted.value(issued.code))}, valid until ${DateTime.formatIso(issued.expiresAt)}`
    )
    const enrolment = yield* guard(op.enrolment.redeem({ payload: { code: issued.code } }))
    yield* say(
      `agent:    aap login --code …        → agent token for ${enrolment.agent} (kept in memory by this demo)`
    )
    const again = yield* Effect.either(op.enrolment.redeem({ payload: { code: issued.code } }))
    yield* say(
      `the same code a second time          → ${again._tag === "Left" ? `refused (${fail(again.left).tag})` : "accepted?!"}`
    )
    const agentConn: Settings.Connection = {
      url: operatorConn.url,
      token: Option.some(enrolment.token),
      tokenSource: "demo"
    }
    const agent: Client = yield* make(agentConn)
    const view = yield* guard(agent.catalog.list())
    yield* say(`the agent may request: ${view.capabilities.map((c) => `${c.id} (${c.tier})`).join(", ")}`)

    yield* step("Store a secret in the agent's wallet (envelope-encrypted in the vault)")
    const demoKey = `sk-or-demo-${Crypto.randomBytes(12).toString("hex")}`
    const stored = yield* guard(
      op.secrets.put({
        path: { wallet: view.wallet, name: "openrouter/api-key" },
        payload: { value: Redacted.make(demoKey) }
      })
    )
    yield* say(
      `operator: aap secret put ${view.wallet}/openrouter/api-key < key.txt → version ${stored.version}`
    )
    const caKey = Crypto.generateKeyPairSync("ed25519")
      .privateKey.export({ format: "pem", type: "pkcs8" })
      .toString()
    yield* guard(
      op.secrets.put({
        path: { wallet: view.wallet, name: "ssh/ca-key" },
        payload: { value: Redacted.make(caKey) }
      })
    )
    yield* say(
      `operator: aap secret put ${view.wallet}/ssh/ca-key --file ca.pem (a demo SSH certificate authority)`
    )
    const listed = yield* guard(op.secrets.list({ path: { wallet: view.wallet } }))
    yield* say(
      `aap secret list ${view.wallet} → ${listed.secrets.map((s) => `${s.name} v${s.version}`).join(", ")} (names and versions, never values)`
    )

    yield* step("A low-tier request is granted at once and delivered")
    const low = yield* guard(agent.sessions.request({ payload: { capability: "openrouter-chat" } }))
    yield* say(
      `agent: aap session request openrouter-chat → ${low.id} ${low.status}, until ${DateTime.formatIso(low.expiresAt)}`
    )
    const lowCred = yield* guard(agent.delivery.deliver({ path: { id: low.id }, payload: {} }))
    yield* say(
      `agent: credential delivered, env ${Object.keys(lowCred.env).join(", ")} = ${hint(Redacted.value(Object.values(lowCred.env)[0] ?? Redacted.make("")))}`
    )
    yield* say(
      dim(
        `with aap exec openrouter-chat -- CMD the value goes into CMD's environment and is masked in its output`
      )
    )

    yield* step("A high-tier request waits for an operator")
    const high = yield* guard(
      agent.sessions.request({ payload: { capability: "ssh-platform-host", ttlSeconds: 600 } })
    )
    yield* say(
      `agent: aap session request ssh-platform-host --wait → ${high.id} ${high.status} (needs ${high.requiredApprovals} approval)`
    )
    const early = yield* Effect.either(
      agent.delivery.deliver({ path: { id: high.id }, payload: { publicKey: ephemeralSshKey() } })
    )
    yield* say(
      `delivery before approval → ${early._tag === "Left" ? `refused (${fail(early.left).tag})` : "delivered?!"}`
    )
    const self = yield* Effect.either(agent.sessions.approve({ path: { id: high.id }, payload: {} }))
    yield* say(
      `the agent approving its own request → ${self._tag === "Left" ? `refused (${fail(self.left).tag})` : "accepted?!"}`
    )

    yield* step("The operator approves; the credential is delivered")
    const approved = yield* guard(
      op.sessions.approve({ path: { id: high.id }, payload: { reason: "demo deploy" } })
    )
    yield* say(`operator: aap session approve ${high.id} --reason "demo deploy" → ${approved.status}`)
    const cert = yield* guard(
      agent.delivery.deliver({ path: { id: high.id }, payload: { publicKey: ephemeralSshKey() } })
    )
    if (cert.credential._tag === "ssh-certificate") {
      yield* say(
        `agent: SSH certificate ${cert.credential.keyId} for principals ${cert.credential.principals.join(", ")}, valid until ${DateTime.formatIso(cert.credential.validBefore)}`
      )
    } else yield* say(`agent: ${cert.credential._tag} credential delivered`)

    yield* step("Revocation: the session ends and delivery is refused")
    const revoked = yield* guard(
      op.sessions.revoke({ path: { id: high.id }, payload: { reason: "demo over" } })
    )
    yield* say(`operator: aap session revoke ${high.id} → ${revoked.status}`)
    const after = yield* Effect.either(
      agent.delivery.deliver({ path: { id: high.id }, payload: { publicKey: ephemeralSshKey() } })
    )
    yield* say(
      `agent: delivery after revocation → ${after._tag === "Left" ? `refused: ${fail(after.left).message}` : "delivered?!"}`
    )
    yield* guard(agent.sessions.revoke({ path: { id: low.id }, payload: { reason: "demo over" } }))
    yield* say(`agent: aap session revoke ${low.id} → revoked`)

    yield* step("Every step is in the hash-chained audit log")
    const page = yield* guard(op.audit.list({ urlParams: { limit: 200 } }))
    const mine = page.events.filter((e) => e.session === low.id || e.session === high.id)
    for (const e of mine)
      yield* say(`${e.ts}  ${e.action.padEnd(20)} ${e.outcome.padEnd(8)} ${e.actor.type}:${e.actor.id}`)
    const report = yield* guard(op.audit.verify())
    yield* say(
      `aap audit verify → ${report.ok ? "intact" : "BROKEN"}: ${report.streams.length} stream(s), ${report.streams.reduce((n, s) => n + s.records, 0)} records`
    )
    const leaked = page.events.some((e) => JSON.stringify(e).includes(demoKey))
    yield* say(`the secret value appears in the audit log: ${leaked ? "YES (a bug)" : "no"}`)

    yield* step("Next")
    yield* say("aap --help · docs/cli.md · aap exec openrouter-chat -- env · aap session list --json")
    if (!report.ok || leaked) return yield* new ExitCode({ code: 1 })
  }).pipe(
    Effect.catchIf(
      (e): e is BrokerError => e instanceof Error && "_tag" in e && e._tag === "BrokerError",
      (e) => Effect.zipRight(Console.error(`aap demo: ${e.message}`), new ExitCode({ code: e.code }))
    )
  )
