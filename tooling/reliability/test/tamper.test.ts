/**
 * Storage tampering: someone with write access to the DynamoDB tables (and none to the keys)
 * edits vault, session and token items directly. Every edit is detected and refused through
 * the broker's HTTP API: no credential leaves, no privilege is gained, and what does answer
 * carries a `_tag` (never the secret).
 *
 * The broker runs as `aap serve` against a DynamoDB endpoint (dynalite in this process), with
 * its token, session and secret caches off so every request reads the table.
 */
import { createHash } from "node:crypto"
import { Engine } from "@aap/local-stack"
import {
  type AttributeValue,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand
} from "@aws-sdk/client-dynamodb"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import {
  broker,
  call,
  enrol,
  operatorToken,
  putSecret,
  type Reply,
  spawnBroker,
  stop,
  tempDir
} from "./support.js"

const VAULT = "aap-vault"
const COORDINATION = "aap-coordination"
const CODEX_SECRET = "sk-codex-tamper-0123456789"
const CLAUDE_SECRET = "sk-claude-tamper-9876543210"

const refused = (r: Reply, what: string, tags: ReadonlyArray<string>) => {
  process.stderr.write(`tamper: ${what} -> ${r.status} ${String(r.json._tag)}\n`)
  assert.isAtLeast(r.status, 400, `${what}: must be refused, got ${r.status} ${r.text}`)
  assert.include(tags, r.json._tag, `${what}: ${r.status} ${r.text}`)
  assert.notInclude(r.text, CODEX_SECRET, `${what}: secret in the error body`)
  assert.notInclude(r.text, CLAUDE_SECRET, `${what}: secret in the error body`)
}

/** The broker's environment against the engine at `endpoint`, with no caches (every read hits the table). */
const tamperEnv = (endpoint: string, logLevel = "warning") => ({
  AWS_ACCESS_KEY_ID: "tamper",
  AWS_SECRET_ACCESS_KEY: "tamper",
  AWS_REGION: "us-east-1",
  AAP_DYNAMODB_ENDPOINT: endpoint,
  AAP_CACHE_TTL: "0",
  AAP_SECRET_CACHE_TTL: "0",
  AAP_LOG_LEVEL: logLevel
})

/** A client of the engine at `endpoint`, for edits behind the broker's back; closed with the scope. */
const tableClient = (endpoint: string) =>
  Effect.acquireRelease(
    Effect.sync(
      () =>
        new DynamoDBClient({
          endpoint,
          region: "us-east-1",
          credentials: { accessKeyId: "tamper", secretAccessKey: "tamper" }
        })
    ),
    (client) => Effect.sync(() => client.destroy())
  )

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex")

describe("storage tampering at the DynamoDB level", () => {
  it.scoped(
    "vault, session and token items edited in the table are detected and refused",
    () =>
      Effect.gen(function* () {
        const engine = yield* Engine.dynamo()
        const home = tempDir("tamper")
        const b = yield* broker(home, tamperEnv(engine.endpoint))
        const ddb = yield* tableClient(engine.endpoint)
        yield* Effect.promise(async () => {
          const url = b.url
          const op = operatorToken(home)
          await putSecret(url, op, "codex", "openrouter/api-key", CODEX_SECRET)
          await putSecret(url, op, "claude", "openrouter/api-key", CLAUDE_SECRET)
          const codex = await enrol(url, op, "codex")
          const claude = await enrol(url, op, "claude")
          const open = async (token: string) => {
            const s = await call(url, "POST", "/v1/sessions", {
              token,
              body: { capability: "openrouter-chat" }
            })
            assert.strictEqual(s.status, 201, s.text)
            return String(s.json.id)
          }
          const deliver = (token: string, id: string) =>
            call(url, "POST", `/v1/sessions/${id}/credentials`, { token, body: {} })
          const setData = (pk: string, sk: string, field: string, value: AttributeValue) =>
            ddb.send(
              new UpdateItemCommand({
                TableName: COORDINATION,
                Key: { PK: { S: pk }, SK: { S: sk } },
                UpdateExpression: "SET #d.#f = :v",
                ExpressionAttributeNames: { "#d": "data", "#f": field },
                ExpressionAttributeValues: { ":v": value }
              })
            )
          const vaultKey = (wallet: string) => ({
            PK: { S: `wallet#${wallet}` },
            SK: { S: "secret#openrouter/api-key#v000000001" }
          })

          // --- vault ---------------------------------------------------------------------------
          // Baseline: delivery works before any edit.
          const before = await deliver(codex, await open(codex))
          assert.strictEqual(before.status, 200, before.text)
          assert.include(before.text, CODEX_SECRET)

          // (1) one ciphertext bit flipped
          const item = (await ddb.send(new GetItemCommand({ TableName: VAULT, Key: vaultKey("codex") }))).Item
          assert.isDefined(item?.content_encrypted?.B, "vault item layout: content_encrypted is binary")
          const original = item?.content_encrypted?.B ?? new Uint8Array()
          const flipped = Uint8Array.from(original)
          flipped[0] = (flipped[0] ?? 0) ^ 0x01
          await ddb.send(
            new UpdateItemCommand({
              TableName: VAULT,
              Key: vaultKey("codex"),
              UpdateExpression: "SET content_encrypted = :c",
              ExpressionAttributeValues: { ":c": { B: flipped } }
            })
          )
          refused(await deliver(codex, await open(codex)), "vault: flipped ciphertext bit", ["Tampered"])

          // (2) claude's envelope copied over codex's (AAD binds the address: wallet, name, version)
          const claudeItem = (
            await ddb.send(new GetItemCommand({ TableName: VAULT, Key: vaultKey("claude") }))
          ).Item
          assert.isDefined(claudeItem)
          await ddb.send(
            new PutItemCommand({
              TableName: VAULT,
              Item: { ...claudeItem, ...vaultKey("codex"), wallet: { S: "codex" } }
            })
          )
          const swapped = await deliver(codex, await open(codex))
          refused(swapped, "vault: another wallet's envelope moved to this address", ["Tampered"])
          // The untouched wallet still delivers.
          const claudeOk = await deliver(claude, await open(claude))
          assert.strictEqual(claudeOk.status, 200, claudeOk.text)

          // A fresh version, so the session cases below fail on the session and not on the vault.
          await putSecret(url, op, "codex", "openrouter/api-key", CODEX_SECRET)
          const fresh = await deliver(codex, await open(codex))
          assert.strictEqual(fresh.status, 200, fresh.text)

          // --- sessions ------------------------------------------------------------------------
          // (3) ownership forged: codex's session rewritten to claude
          const stolen = await open(codex)
          await setData(`session#${stolen}`, "session", "agent", { S: "claude" })
          await setData(`session#${stolen}`, "session", "wallet", { S: "claude" })
          refused(await deliver(claude, stolen), "session: owner rewritten, claude delivers", [
            "Tampered",
            "NotFound"
          ])
          refused(
            await call(url, "GET", `/v1/sessions/${stolen}`, { token: op }),
            "session: operator reads it",
            ["Tampered"]
          )

          // (4) a revoked session brought back to active
          const revived = await open(codex)
          const revoke = await call(url, "POST", `/v1/sessions/${revived}/revoke`, { token: codex, body: {} })
          assert.strictEqual(revoke.status, 200, revoke.text)
          await setData(`session#${revived}`, "session", "status", { S: "active" })
          refused(await deliver(codex, revived), "session: revoked → active", ["Tampered"])

          // --- tokens --------------------------------------------------------------------------
          // (5) an agent token promoted to operator
          await setData(`token#${sha256(codex)}`, "token", "type", { S: "operator" })
          refused(
            await call(url, "GET", "/v1/sessions?agent=claude", { token: codex }),
            "token: agent → operator, operator route",
            ["Tampered", "Unauthorized", "Forbidden"]
          )
          refused(
            await call(url, "POST", "/v1/sessions", {
              token: codex,
              body: { capability: "openrouter-chat" }
            }),
            "token: promoted token on an agent route",
            ["Tampered", "Unauthorized", "Forbidden"]
          )

          // (6) a token item inserted for a token the attacker chose, with a copied MAC
          const forged = `aap_op_${"f".repeat(43)}`
          const opItem = (
            await ddb.send(
              new GetItemCommand({
                TableName: COORDINATION,
                Key: { PK: { S: `token#${sha256(op)}` }, SK: { S: "token" } }
              })
            )
          ).Item
          assert.isDefined(opItem?.data?.M)
          const data = opItem?.data?.M ?? {}
          await ddb.send(
            new PutItemCommand({
              TableName: COORDINATION,
              Item: {
                ...opItem,
                PK: { S: `token#${sha256(forged)}` },
                data: { M: { ...data, hash: { S: sha256(forged) } } }
              }
            })
          )
          refused(
            await call(url, "GET", "/v1/audit/verify", { token: forged }),
            "token: inserted item, copied MAC",
            ["Tampered", "Unauthorized"]
          )

          // The real operator token is untouched and still works; the audit chain still verifies.
          const verify = await call(url, "GET", "/v1/audit/verify", { token: op })
          assert.strictEqual(verify.status, 200, verify.text)
          assert.isTrue(verify.json.ok, verify.text)
        })
      }),
    120_000
  )

  it.scoped(
    "a revoked session's earlier item put back (rollback with a validly MACed snapshot) is refused",
    () =>
      Effect.gen(function* () {
        const engine = yield* Engine.dynamo()
        const home = tempDir("rollback")
        const b = yield* broker(home, tamperEnv(engine.endpoint))
        const ddb = yield* tableClient(engine.endpoint)
        yield* Effect.promise(async () => {
          const url = b.url
          const op = operatorToken(home)
          await putSecret(url, op, "codex", "openrouter/api-key", CODEX_SECRET)
          const codex = await enrol(url, op, "codex")
          const s = await call(url, "POST", "/v1/sessions", {
            token: codex,
            body: { capability: "openrouter-chat" }
          })
          assert.strictEqual(s.status, 201, s.text)
          const id = String(s.json.id)
          const key = { PK: { S: `session#${id}` }, SK: { S: "session" } }
          // A copy taken while the session was active (a table dump, a backup, a stream record).
          const snapshot = (await ddb.send(new GetItemCommand({ TableName: COORDINATION, Key: key }))).Item
          assert.isDefined(snapshot)
          const revoked = await call(url, "POST", `/v1/sessions/${id}/revoke`, { token: op, body: {} })
          assert.strictEqual(revoked.status, 200, revoked.text)
          await ddb.send(new PutItemCommand({ TableName: COORDINATION, Item: snapshot ?? {} }))
          refused(
            await call(url, "POST", `/v1/sessions/${id}/credentials`, { token: codex, body: {} }),
            "session: revoked, earlier valid item restored (rollback)",
            ["Tampered", "Gone", "Conflict", "NotFound"]
          )
        })
      }),
    120_000
  )

  it.scoped(
    "after a restart, a revoked session's earlier item put back is still refused (marks from the audit log)",
    () =>
      Effect.gen(function* () {
        const engine = yield* Engine.dynamo()
        const home = tempDir("rollback-restart")
        const env = tamperEnv(engine.endpoint, "info")
        const ddb = yield* tableClient(engine.endpoint)
        yield* Effect.promise(async () => {
          const first = await spawnBroker(home, env)
          let id = ""
          let codex = ""
          let snapshot: Record<string, AttributeValue> | undefined
          let control = ""
          let victim = ""
          let victimItem: Record<string, AttributeValue> | undefined
          try {
            const op = operatorToken(home)
            await putSecret(first.url, op, "codex", "openrouter/api-key", CODEX_SECRET)
            codex = await enrol(first.url, op, "codex")
            const s = await call(first.url, "POST", "/v1/sessions", {
              token: codex,
              body: { capability: "openrouter-chat" }
            })
            assert.strictEqual(s.status, 201, s.text)
            id = String(s.json.id)
            // A copy taken while the session was active (a table dump, a backup, a stream record).
            snapshot = (
              await ddb.send(
                new GetItemCommand({
                  TableName: COORDINATION,
                  Key: { PK: { S: `session#${id}` }, SK: { S: "session" } }
                })
              )
            ).Item
            assert.isDefined(snapshot)
            const revoked = await call(first.url, "POST", `/v1/sessions/${id}/revoke`, {
              token: op,
              body: {}
            })
            assert.strictEqual(revoked.status, 200, revoked.text)
            // a control: another active session, untouched, must keep working after the restart
            const c = await call(first.url, "POST", "/v1/sessions", {
              token: codex,
              body: { capability: "openrouter-chat" }
            })
            assert.strictEqual(c.status, 201, c.text)
            control = String(c.json.id)
            // an agent token revoked through the API, its earlier item kept
            victim = await enrol(first.url, op, "codex")
            victimItem = (
              await ddb.send(
                new GetItemCommand({
                  TableName: COORDINATION,
                  Key: { PK: { S: `token#${sha256(victim)}` }, SK: { S: "token" } }
                })
              )
            ).Item
            assert.isDefined(victimItem)
            const fingerprint = sha256(victim).slice(0, 12)
            const listed = await call(first.url, "GET", "/v1/agents/codex/tokens", { token: op })
            assert.include(
              (listed.json.tokens as Array<{ fingerprint: string }>).map((t) => t.fingerprint),
              fingerprint,
              listed.text
            )
            const out = await call(first.url, "POST", "/v1/agents/codex/tokens/revoke", {
              token: op,
              body: { fingerprint }
            })
            assert.strictEqual(out.status, 200, out.text)
            assert.strictEqual(out.json.revoked, 1)
          } finally {
            await stop(first)
          }
          // Put back while no broker runs: the next one never reads the revoked item from the
          // table; only the audit log knows of the revocation.
          await ddb.send(new PutItemCommand({ TableName: COORDINATION, Item: snapshot ?? {} }))
          await ddb.send(new PutItemCommand({ TableName: COORDINATION, Item: victimItem ?? {} }))
          const second = await spawnBroker(home, env)
          try {
            refused(
              await call(second.url, "POST", `/v1/sessions/${id}/credentials`, { token: codex, body: {} }),
              "session: revoked, earlier valid item restored while the broker was down (rollback)",
              ["Tampered"]
            )
            const ok = await call(second.url, "POST", `/v1/sessions/${control}/credentials`, {
              token: codex,
              body: {}
            })
            assert.strictEqual(ok.status, 200, ok.text)
            const again = await call(second.url, "POST", "/v1/sessions", {
              token: victim,
              body: { capability: "openrouter-chat" }
            })
            assert.strictEqual(again.status, 401, `the revoked token restored: ${again.status} ${again.text}`)
            assert.match(second.output(), /rollback marks seeded from the audit log/)
          } finally {
            await stop(second)
          }
        })
      }),
    120_000
  )
})
