/**
 * Crash: the broker under load is killed with SIGKILL at random moments, 10 times, on one
 * AAP_HOME (embedded dynalite on disk, local keyring, JSONL audit log). After every restart:
 *
 * - the audit log verifies (`GET /v1/audit/verify` → ok), torn tails included;
 * - every credential the load client received has its `credential.issued` record (the record
 *   is durable before the response leaves the broker);
 * - every session the client was told exists (201) still exists;
 * - no session is in an impossible state (low tier never pending or denied, active ⇒
 *   activatedAt, a session whose credential was delivered was active).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import {
  allSessions,
  auditEvents,
  call,
  enrol,
  operatorToken,
  putSecret,
  type Spawned,
  spawnBroker,
  stop,
  tempDir
} from "./support.js"

const KILLS = 10
const WORKERS = 4

interface Observed {
  readonly acknowledged: Set<string>
  readonly delivered: Set<string>
  readonly revoked: Set<string>
  requests: number
}

/** Session request → delivery (→ sometimes revoke) in a loop until the broker dies. */
const loadUntilDead = async (b: Spawned, agent: string, seen: Observed): Promise<void> => {
  const worker = async (n: number) => {
    for (let i = 0; ; i++) {
      try {
        const s = await call(b.url, "POST", "/v1/sessions", {
          token: agent,
          body: { capability: "openrouter-chat", ttlSeconds: 3600 }
        })
        seen.requests++
        if (s.status !== 201) continue
        const id = String(s.json.id)
        seen.acknowledged.add(id)
        const c = await call(b.url, "POST", `/v1/sessions/${id}/credentials`, { token: agent, body: {} })
        seen.requests++
        if (c.status === 200) seen.delivered.add(id)
        if ((i + n) % 3 === 0) {
          const r = await call(b.url, "POST", `/v1/sessions/${id}/revoke`, { token: agent, body: {} })
          seen.requests++
          if (r.status === 200) seen.revoked.add(id)
        }
      } catch {
        return // connection refused / reset: the broker is gone
      }
    }
  }
  await Promise.all(Array.from({ length: WORKERS }, (_, n) => worker(n)))
}

const check = async (b: Spawned, operator: string, seen: Observed, round: number) => {
  const verify = await call(b.url, "GET", "/v1/audit/verify", { token: operator })
  assert.strictEqual(verify.status, 200, verify.text)
  assert.isTrue(verify.json.ok, `round ${round}: audit does not verify: ${verify.text}`)

  const issued = new Set(
    (await auditEvents(b.url, operator, "credential.issued")).map((e) => String(e.session ?? ""))
  )
  const missing = [...seen.delivered].filter((id) => !issued.has(id))
  assert.deepStrictEqual(
    missing,
    [],
    `round ${round}: credentials delivered without a credential.issued record`
  )

  const sessions = await allSessions(b.url, operator, "codex")
  const byId = new Map(sessions.map((s) => [String(s.id), s]))
  const lost = [...seen.acknowledged].filter((id) => !byId.has(id))
  assert.deepStrictEqual(lost, [], `round ${round}: sessions acknowledged with 201 but gone after the crash`)
  for (const s of sessions) {
    const where = `round ${round}: session ${String(s.id)} ${JSON.stringify(s)}`
    assert.include(
      ["active", "expired", "revoked"],
      s.status,
      `${where}: a low-tier session is never pending`
    )
    if (s.status === "active") assert.isDefined(s.activatedAt, `${where}: active without activatedAt`)
    if (seen.revoked.has(String(s.id))) {
      assert.strictEqual(s.status, "revoked", `${where}: revocation acknowledged but not stored`)
    }
  }
}

describe("crash: SIGKILL under load", () => {
  it.live(
    `${KILLS} random SIGKILLs; audit verifies, every delivery audited, no session lost or impossible`,
    () =>
      Effect.promise(async () => {
        const home = tempDir("crash")
        // No caches: every request reads the store, so what the client saw is what was stored.
        const env = { AAP_CACHE_TTL: "0", AAP_SECRET_CACHE_TTL: "0", AAP_LOG_LEVEL: "warning" }
        const seen: Observed = {
          acknowledged: new Set(),
          delivered: new Set(),
          revoked: new Set(),
          requests: 0
        }
        let b = await spawnBroker(home, env)
        const operator = operatorToken(home)
        await putSecret(b.url, operator, "codex", "openrouter/api-key", "sk-or-crash-test")
        const agent = await enrol(b.url, operator, "codex")
        try {
          for (let round = 1; round <= KILLS; round++) {
            const load = loadUntilDead(b, agent, seen)
            await new Promise((r) => setTimeout(r, 200 + Math.floor(Math.random() * 1_000)))
            await stop(b, "SIGKILL")
            await load
            b = await spawnBroker(home, env)
            await check(b, operator, seen, round)
          }
          assert.isAbove(seen.delivered.size, KILLS, "the load client got credentials during the rounds")
        } finally {
          await stop(b, "SIGKILL")
        }
      }),
    170_000
  )
})
