/**
 * Credential delivery through the embedded broker, over a real socket: bearer-token (with a
 * canary secret that must appear nowhere but in the delivery response), aws-sts with STS
 * mocked at the SDK boundary, approvals and revocation.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { AwsCredentials } from "@aap/agent-coordination"
import { assert, describe, layer } from "@effect/vitest"
import { mockClient } from "aws-sdk-client-mock"
import { Duration, Effect, Layer, Option } from "effect"
import * as Jose from "jose"
import * as Broker from "../src/Broker.js"
import * as BrokerConfig from "../src/BrokerConfig.js"
import { call, catalogFile, post, type Reply, tempHome } from "./support.js"

const CANARY = "sk-or-v1-CANARY-7f3a9c1e5b2d"
const home = tempHome()
const logLines: Array<string> = []
const replies: Array<Reply> = []

type StsCall = { readonly input: Record<string, unknown> }
const stsCalls: Array<StsCall> = []

// Real STS clients from delivery's layer, each stubbed at the SDK boundary.
const stsClients = Layer.effect(
  AwsCredentials.StsClients,
  Effect.map(AwsCredentials.StsClients, (real) => {
    const mocked = new Set<unknown>()
    return AwsCredentials.StsClients.of({
      forRegion: (region) => {
        const client = real.forRegion(region)
        if (!mocked.has(client)) {
          mocked.add(client)
          const stub = mockClient(client)
          stub.onAnyCommand().callsFake(async (input: Record<string, unknown>) => {
            stsCalls.push({ input })
            return {
              Credentials: {
                AccessKeyId: "ASIAEXAMPLEEXAMPLE00",
                SecretAccessKey: "sts-secret-CANARY-sts",
                SessionToken: "sts-session-token",
                Expiration: new Date(Date.now() + 900_000)
              },
              AssumedRoleUser: {
                Arn: "arn:aws:sts::123456789012:assumed-role/aap-memory/x",
                AssumedRoleId: "AROA:x"
              }
            }
          })
        }
        return client
      }
    })
  })
).pipe(Layer.provide(AwsCredentials.layerStsClients))

const config = BrokerConfig.make({
  home,
  listen: { host: "127.0.0.1", port: 0 },
  catalogPath: catalogFile,
  memoryBucket: Option.some("aap-memory"),
  requestTimeout: Duration.seconds(15),
  logLevel: "debug"
})

const BrokerLive = Broker.layer(config, { stsClients, logSink: (line) => logLines.push(line) })

const recorded = (r: Effect.Effect<Reply>) => Effect.tap(r, (reply) => Effect.sync(() => replies.push(reply)))

const setup = Effect.gen(function* () {
  const { url } = yield* Broker.BrokerInfo
  const op = Fs.readFileSync(Path.join(home, "operator.token"), "utf8").trim()
  const code = (yield* post(url, "/v1/agents/codex/link-codes", op)).json.code as string
  const codex = (yield* post(url, "/v1/link-codes/redeem", undefined, { code })).json.token as string
  const code2 = (yield* post(url, "/v1/agents/claude/link-codes", op)).json.code as string
  const claude = (yield* post(url, "/v1/link-codes/redeem", undefined, { code: code2 })).json.token as string
  return { url, op, codex, claude }
})

describe("delivery through the broker", () => {
  layer(BrokerLive, { timeout: 60_000, excludeTestServices: true })((it) => {
    it.effect("bearer-token: stored secret delivered to the owner only, audited, canary nowhere else", () =>
      Effect.gen(function* () {
        const { url, op, codex, claude } = yield* setup
        const put = yield* recorded(
          call(url, "PUT", "/v1/wallets/codex/secrets/openrouter/api-key", {
            token: op,
            body: JSON.stringify({ value: CANARY })
          })
        )
        assert.strictEqual(put.status, 200, put.text)
        assert.strictEqual(put.json.name, "openrouter/api-key")
        const list = yield* recorded(call(url, "GET", "/v1/wallets/codex/secrets", { token: op }))
        assert.strictEqual(list.status, 200)
        assert.notInclude(list.text, CANARY)
        const agentPut = yield* recorded(
          call(url, "PUT", "/v1/wallets/codex/secrets/x", {
            token: codex,
            body: JSON.stringify({ value: CANARY })
          })
        )
        assert.strictEqual(agentPut.status, 403)

        const session = yield* recorded(post(url, "/v1/sessions", codex, { capability: "openrouter-chat" }))
        const id = session.json.id as string
        const delivered = yield* post(url, `/v1/sessions/${id}/credentials`, codex, {})
        assert.strictEqual(delivered.status, 200, delivered.text)
        assert.deepStrictEqual(delivered.json.env, { OPENROUTER_API_KEY: CANARY })
        assert.strictEqual((delivered.json.credential as { token: string }).token, CANARY)

        // another agent's session: 404 like a missing one; operators cannot fetch credentials
        const foreign = yield* recorded(post(url, `/v1/sessions/${id}/credentials`, claude, {}))
        assert.strictEqual(foreign.status, 404, foreign.text)
        const byOperator = yield* recorded(post(url, `/v1/sessions/${id}/credentials`, op, {}))
        assert.strictEqual(byOperator.status, 403)
        const noToken = yield* recorded(post(url, `/v1/sessions/${id}/credentials`, undefined, {}))
        assert.strictEqual(noToken.status, 401)

        // revoked: refused at once (the session cache is evicted by the revoke)
        const revoked = yield* recorded(post(url, `/v1/sessions/${id}/revoke`, codex, {}))
        assert.strictEqual(revoked.status, 200)
        const after = yield* recorded(post(url, `/v1/sessions/${id}/credentials`, codex, {}))
        assert.strictEqual(after.status, 409, after.text)
        assert.strictEqual(after.json._tag, "SessionNotActive")

        // a missing secret is a 503 that names no value
        const claudeSession = yield* recorded(
          post(url, "/v1/sessions", claude, { capability: "openrouter-chat" })
        )
        const missing = yield* recorded(
          post(url, `/v1/sessions/${claudeSession.json.id as string}/credentials`, claude, {})
        )
        assert.strictEqual(missing.status, 503, missing.text)
        assert.strictEqual(missing.json._tag, "CredentialUnavailable")

        // the audit log has credential.issued, verifies, and holds no secret
        const audit = yield* recorded(call(url, "GET", "/v1/audit?limit=1000", { token: op }))
        const actions = (audit.json.events as Array<{ action: string }>).map((e) => e.action)
        assert.include(actions, "credential.issued")
        const verify = yield* recorded(call(url, "GET", "/v1/audit/verify", { token: op }))
        assert.strictEqual(verify.json.ok, true)

        const metrics = yield* call(url, "GET", "/metrics")
        assert.include(metrics.text, 'aap_deliveries_total{backing="bearer-token",outcome="success"} 1')
        assert.include(metrics.text, "aap_audit_append_duration_seconds_bucket")
        assert.match(metrics.text, /^aap_sessions\{state="active"\} [1-9]/m)
        assert.match(metrics.text, /^aap_sessions\{state="pending_approval"\} \d+/m)
        assert.include(metrics.text, 'aap_session_transitions_total{state="revoked"} 1')

        const auditFiles = Fs.readdirSync(Path.join(home, "audit"), { recursive: true, encoding: "utf8" })
          .map((f) => Path.join(home, "audit", f))
          .filter((f) => Fs.statSync(f).isFile())
        assert.isAbove(auditFiles.length, 0)
        for (const f of auditFiles) assert.notInclude(Fs.readFileSync(f, "utf8"), CANARY, f)
        assert.isAbove(logLines.length, 10)
        for (const line of logLines) assert.notInclude(line, CANARY)
        for (const r of replies) assert.notInclude(r.text, CANARY)
      })
    )

    it.effect("high tier: pending → credentials refused → approved → delivered", () =>
      Effect.gen(function* () {
        const { url, op, codex } = yield* setup
        yield* call(url, "PUT", "/v1/wallets/codex/secrets/forgejo%2Ftoken", {
          token: op,
          body: JSON.stringify({ value: "forgejo-pat" })
        })
        const s = yield* post(url, "/v1/sessions", codex, { capability: "ssh-platform-host" })
        assert.strictEqual(s.json.status, "pending_approval")
        const id = s.json.id as string
        const early = yield* post(url, `/v1/sessions/${id}/credentials`, codex, {})
        assert.strictEqual(early.status, 409)
        assert.strictEqual(early.json._tag, "SessionNotActive")
        const approved = yield* post(url, `/v1/sessions/${id}/approve`, op, { reason: "maintenance" })
        assert.strictEqual(approved.json.status, "active")
        const noKey = yield* post(url, `/v1/sessions/${id}/credentials`, codex, {})
        assert.strictEqual(noKey.status, 400, noKey.text)
        assert.strictEqual(noKey.json._tag, "InvalidPublicKey")
      })
    )

    it.effect("aws-sts: the JWT verifies against the broker's JWKS; STS gets the session policy", () =>
      Effect.gen(function* () {
        const { url, codex } = yield* setup
        const s = yield* post(url, "/v1/sessions", codex, { capability: "memory-s3" })
        assert.strictEqual(s.status, 201, s.text)
        const id = s.json.id as string
        const delivered = yield* post(url, `/v1/sessions/${id}/credentials`, codex, {})
        assert.strictEqual(
          delivered.status,
          200,
          `${delivered.text} ${stsCalls.length} ${logLines
            .filter((l) => /sts|STS|error/.test(l))
            .slice(-3)
            .join("\n")}`
        )
        const cred = delivered.json.credential as Record<string, unknown>
        assert.strictEqual(cred._tag, "aws-sts")
        assert.strictEqual(cred.accessKeyId, "ASIAEXAMPLEEXAMPLE00")
        assert.strictEqual((delivered.json.env as Record<string, string>).AWS_REGION, "eu-central-1")

        assert.strictEqual(stsCalls.length, 1)
        const input = stsCalls[0]!.input
        assert.strictEqual(input.RoleArn, "arn:aws:iam::123456789012:role/aap-memory")
        assert.match(String(input.RoleSessionName), new RegExp(id))
        const policy = JSON.parse(String(input.Policy)) as { Statement: Array<{ Resource: unknown }> }
        assert.include(JSON.stringify(policy.Statement), "arn:aws:s3:::aap-memory/codex/*")
        assert.isAtMost(Number(input.DurationSeconds), 3600)

        // verify the web identity token as AWS would: discovery → JWKS → ES256 signature
        const discovery = (yield* call(url, "GET", "/.well-known/openid-configuration")).json
        const jwks = (yield* call(url, "GET", "/.well-known/jwks.json")).json as unknown as Jose.JSONWebKeySet
        const keyset = Jose.createLocalJWKSet(jwks)
        const { payload } = yield* Effect.promise(() =>
          Jose.jwtVerify(String(input.WebIdentityToken), keyset, {
            issuer: String(discovery?.issuer),
            audience: "sts.amazonaws.com"
          })
        )
        const tags = payload["https://aws.amazon.com/tags"] as {
          principal_tags: Record<string, Array<string>>
        }
        assert.deepStrictEqual(tags.principal_tags.aap_wallet, ["codex"])
        assert.deepStrictEqual(tags.principal_tags.aap_session, [id])
      })
    )
  })
})
