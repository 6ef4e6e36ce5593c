/**
 * `aap serve` in embedded mode runs the worker's jobs in its own process (the engine's data can
 * be open in one process only): a session past its expiry is marked `expired` in the store and
 * audited by the sweep, without anybody reading it. With `AAP_WORKER_IN_PROCESS=off` nothing sweeps.
 */
import { assert, describe, it } from "@effect/vitest"
import { type RunningBroker, startBroker } from "./support.js"

const api = async (broker: RunningBroker, method: string, path: string, token: string, body?: unknown) => {
  const res = await fetch(broker.url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  return { status: res.status, json: (await res.json()) as Record<string, unknown> }
}

/** Enrols codex and opens a 2-second session; returns its id. */
const shortSession = async (broker: RunningBroker): Promise<string> => {
  const op = broker.operatorToken
  const code = await api(broker, "POST", "/v1/agents/codex/link-codes", op, {})
  assert.strictEqual(code.status, 201, JSON.stringify(code.json))
  const redeemed = await api(broker, "POST", "/v1/link-codes/redeem", "", { code: code.json.code })
  assert.strictEqual(redeemed.status, 200, JSON.stringify(redeemed.json))
  const s = await api(broker, "POST", "/v1/sessions", String(redeemed.json.token), {
    capability: "openrouter-chat",
    ttlSeconds: 2
  })
  assert.strictEqual(s.status, 201, JSON.stringify(s.json))
  return String(s.json.id)
}

/**
 * The session's audited actions. Only the audit is read: nothing here reads or lists the
 * session, so a `session.expired` record can only come from the sweep.
 */
const actions = async (broker: RunningBroker, id: string) => {
  const audit = await api(broker, "GET", `/v1/audit?session=${id}`, broker.operatorToken)
  return ((audit.json.events ?? []) as Array<{ action: string }>).map((e) => e.action)
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe("aap serve runs the worker in-process", () => {
  it("embedded: the expiry sweep marks a due session expired and audits it", async () => {
    const broker = await startBroker({ AAP_WORKER_EXPIRY_EVERY: "500 millis" })
    try {
      const id = await shortSession(broker)
      let swept = false
      for (let i = 0; i < 40 && !swept; i++) {
        await sleep(250)
        swept = (await actions(broker, id)).includes("session.expired")
      }
      assert.isTrue(swept, "the session was not swept within 10 s")
      // and the stored status is expired
      const page = await api(broker, "GET", "/v1/sessions?status=expired&agent=codex", broker.operatorToken)
      assert.include(
        ((page.json.sessions ?? []) as Array<{ id: string }>).map((s) => s.id),
        id
      )
    } finally {
      await broker.stop()
    }
  }, 60_000)

  it("--worker off (AAP_WORKER_IN_PROCESS=off): nothing sweeps", async () => {
    const broker = await startBroker({ AAP_WORKER_EXPIRY_EVERY: "500 millis", AAP_WORKER_IN_PROCESS: "off" })
    try {
      const id = await shortSession(broker)
      await sleep(4_000)
      const seen = await actions(broker, id)
      assert.include(seen, "session.requested")
      assert.notInclude(seen, "session.expired")
    } finally {
      await broker.stop()
    }
  }, 60_000)

  it("a bad AAP_WORKER_IN_PROCESS is refused before anything listens", async () => {
    await startBroker({ AAP_WORKER_IN_PROCESS: "sometimes" }).then(
      (b) => {
        b.stop()
        assert.fail("the broker started")
      },
      (e: unknown) =>
        assert.match(String(e), /exited before.*AAP_WORKER_IN_PROCESS: expected one of auto, on, off/s)
    )
  }, 60_000)
})
