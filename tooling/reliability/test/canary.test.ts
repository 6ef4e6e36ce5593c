/**
 * Leak canary: the whole flow (operator stores a secret, enrols an agent, the agent requests a
 * session, fetches the credential, revokes, tries again; operator lists secrets, reads the audit,
 * verifies it; error paths that carry the secret in the request) with a canary secret, on the
 * embedded broker at debug log level. The canary may appear in exactly one place: the body of
 * the successful credential response to the owning agent. It appears in no log line, no error
 * body, no audit record, no /metrics output, and in no file under AAP_HOME in any encoding
 * (raw, base64, base64url, hex, UTF-16) — only as ciphertext.
 */
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import {
  call,
  enrol,
  filesUnder,
  operatorToken,
  proxyCatalog,
  putSecret,
  type Reply,
  spawnBroker,
  startProxyUpstream,
  stop,
  tempDir
} from "./support.js"

/** The canary's byte patterns in every encoding a careless code path might write it in. */
const forms = (canary: string): Array<{ name: string; bytes: Buffer }> => {
  const raw = Buffer.from(canary, "utf8")
  // base64 of a prefix-aligned slice survives any 3-byte alignment of the surrounding data
  const b64 = [0, 1, 2].map((skip) => raw.subarray(skip).toString("base64").slice(0, 24).replace(/=+$/, ""))
  return [
    { name: "utf8", bytes: raw },
    { name: "utf16le", bytes: Buffer.from(canary, "utf16le") },
    { name: "hex", bytes: Buffer.from(raw.toString("hex")) },
    { name: "HEX", bytes: Buffer.from(raw.toString("hex").toUpperCase()) },
    ...b64.map((s, i) => ({ name: `base64+${i}`, bytes: Buffer.from(s) })),
    ...b64.map((s, i) => ({
      name: `base64url+${i}`,
      bytes: Buffer.from(s.replace(/\+/g, "-").replace(/\//g, "_"))
    })),
    { name: "json-escaped", bytes: Buffer.from(JSON.stringify(canary).slice(1, -1)) }
  ]
}

const leaksIn = (canary: string, bytes: Buffer): Array<string> =>
  forms(canary)
    .filter((f) => bytes.includes(f.bytes))
    .map((f) => f.name)

describe("leak canary", () => {
  it.live(
    "the canary appears only in the owning agent's credential response",
    () =>
      Effect.promise(async () => {
        const canary = `CANARY-${randomBytes(24).toString("hex")}`
        const home = tempDir("canary")
        const b = await spawnBroker(home, { AAP_LOG_LEVEL: "debug", AAP_MAX_BODY_BYTES: "4096" })
        const replies: Array<{ what: string; reply: Reply }> = []
        const record = (what: string, reply: Reply) => {
          replies.push({ what, reply })
          return reply
        }
        let delivered = ""
        try {
          const url = b.url
          const op = operatorToken(home)
          await putSecret(url, op, "codex", "openrouter/api-key", canary)
          const agent = await enrol(url, op, "codex")
          const claude = await enrol(url, op, "claude")
          const s = record(
            "session",
            await call(url, "POST", "/v1/sessions", { token: agent, body: { capability: "openrouter-chat" } })
          )
          const id = String(s.json.id)
          const c = await call(url, "POST", `/v1/sessions/${id}/credentials`, { token: agent, body: {} })
          assert.strictEqual(c.status, 200, c.text)
          delivered = c.text
          // Delivered once: the env map carries it (positive control for the test itself).
          assert.include(delivered, canary)

          // Everything else must not carry it.
          record(
            "other agent delivers",
            await call(url, "POST", `/v1/sessions/${id}/credentials`, { token: claude, body: {} })
          )
          record("session read", await call(url, "GET", `/v1/sessions/${id}`, { token: agent }))
          record("revoke", await call(url, "POST", `/v1/sessions/${id}/revoke`, { token: agent, body: {} }))
          record(
            "deliver after revoke",
            await call(url, "POST", `/v1/sessions/${id}/credentials`, { token: agent, body: {} })
          )
          record("list secrets", await call(url, "GET", "/v1/wallets/codex/secrets", { token: op }))
          // The secret in requests that fail: wrong type, extra fields, unknown wallet, agent token,
          // too large, in the token header, in the path.
          record(
            "put: value of the wrong type",
            await call(url, "PUT", "/v1/wallets/codex/secrets/x", { token: op, body: { value: [canary] } })
          )
          record(
            "put: value in an unknown field",
            await call(url, "PUT", "/v1/wallets/codex/secrets/x", { token: op, body: { valu: canary } })
          )
          record(
            "put: as an agent",
            await call(url, "PUT", "/v1/wallets/codex/secrets/x", { token: agent, body: { value: canary } })
          )
          record(
            "put: without a token",
            await call(url, "PUT", "/v1/wallets/codex/secrets/x", { body: { value: canary } })
          )
          record(
            "put: unknown wallet",
            await call(url, "PUT", "/v1/wallets/nobody%2F../secrets/x", {
              token: op,
              body: { value: canary }
            })
          )
          record(
            "put: too large",
            await call(url, "PUT", "/v1/wallets/codex/secrets/x", {
              token: op,
              body: { value: canary + "x".repeat(5000) }
            })
          )
          record(
            "put: malformed JSON",
            await call(url, "PUT", "/v1/wallets/codex/secrets/x", { token: op, body: `{"value":"${canary}"` })
          )
          record("canary as a bearer token", await call(url, "GET", "/v1/catalog", { token: canary }))
          record("canary in a path", await call(url, "GET", `/v1/sessions/${canary}`, { token: agent }))
          record(
            "redeem with the canary",
            await call(url, "POST", "/v1/link-codes/redeem", { body: { code: canary } })
          )
          record("audit", await call(url, "GET", "/v1/audit?limit=10000", { token: op }))
          record("audit verify", await call(url, "GET", "/v1/audit/verify", { token: op }))
          record("metrics", await call(url, "GET", "/metrics"))
          record("readyz", await call(url, "GET", "/readyz"))
          for (const { what, reply } of replies) {
            assert.deepStrictEqual(
              leaksIn(canary, Buffer.from(reply.text)),
              [],
              `${what} (${reply.status}) carries the canary`
            )
          }
          const audit = replies.find((r) => r.what === "audit")?.reply
          assert.isAbove(
            ((audit?.json.events ?? []) as Array<unknown>).length,
            5,
            "the audit API answered events"
          )
        } finally {
          await stop(b) // SIGTERM: flushes the audit log and closes the store
        }

        // The broker's whole stdout/stderr at debug level.
        assert.deepStrictEqual(
          leaksIn(canary, Buffer.from(b.output())),
          [],
          "broker log output carries the canary"
        )
        assert.include(b.output(), "request", "the broker logged (debug level)")

        // Every file under AAP_HOME: keyring, engine data (LevelDB), audit segments, tokens.
        const files = filesUnder(home)
        assert.isAbove(files.length, 3)
        const hits = files
          .map((f) => ({ f: Path.relative(home, f), found: leaksIn(canary, Fs.readFileSync(f)) }))
          .filter((h) => h.found.length > 0)
        assert.deepStrictEqual(hits, [], "files under AAP_HOME carry the canary")

        // The scan is not vacuous: a file holding the canary in any one form is caught.
        const control = tempDir("canary-control")
        for (const f of forms(canary)) {
          Fs.writeFileSync(
            Path.join(control, f.name),
            Buffer.concat([Buffer.from("xx"), f.bytes, Buffer.from("yy")])
          )
        }
        for (const f of filesUnder(control)) assert.isNotEmpty(leaksIn(canary, Fs.readFileSync(f)), f)
      }),
    120_000
  )

  it.live(
    "egress proxy: the upstream key reaches the upstream and nothing the agent, the log or the audit sees",
    () =>
      Effect.promise(async () => {
        const canary = `CANARY-${randomBytes(24).toString("hex")}`
        const dir = tempDir("canary-proxy")
        const upstream = await startProxyUpstream(dir)
        const home = tempDir("canary-proxy-home")
        const b = await spawnBroker(home, {
          AAP_LOG_LEVEL: "debug",
          AAP_CATALOG: proxyCatalog(dir, upstream.url),
          AAP_PROXY_UPSTREAM_CA_FILE: upstream.caFile
        })
        /** Everything the agent received: status, every response header, the body. */
        const seen: Array<{ what: string; text: string }> = []
        const record = (what: string, text: string) => {
          seen.push({ what, text })
          return text
        }
        try {
          const url = b.url
          const op = operatorToken(home)
          await putSecret(url, op, "codex", "proxy/api-key", canary)
          const agent = await enrol(url, op, "codex")
          const open = async (capability: string) => {
            const s = await call(url, "POST", "/v1/sessions", { token: agent, body: { capability } })
            assert.strictEqual(s.status, 201, s.text)
            const c = await call(url, "POST", `/v1/sessions/${String(s.json.id)}/credentials`, {
              token: agent,
              body: {}
            })
            record(`delivery ${capability}`, c.text)
            assert.strictEqual(c.status, 200, c.text)
            const credential = c.json.credential as Record<string, string>
            assert.strictEqual(credential._tag, "proxy")
            return {
              id: String(s.json.id),
              token: String(credential.token),
              base: String(credential.baseUrl)
            }
          }
          const s = await open("proxied-llm")
          const proxied = async (
            what: string,
            path: string,
            init: { method?: string; headers?: Record<string, string>; body?: string } = {}
          ) => {
            const res = await fetch(`${s.base}${path}`, {
              method: init.method ?? "GET",
              headers: init.headers ?? { authorization: `Bearer ${s.token}` },
              redirect: "manual",
              ...(init.body === undefined ? {} : { body: init.body })
            })
            const text = `${res.status}\n${JSON.stringify([...res.headers])}\n${await res.text()}`
            record(what, text)
            return res.status
          }
          assert.strictEqual(await proxied("ok", "/ok"), 200)
          assert.strictEqual(await proxied("upstream error echoing the header", "/error"), 500)
          assert.strictEqual(await proxied("redirect echoing the header", "/redirect"), 302)
          assert.strictEqual(await proxied("stream", "/stream", { method: "POST", body: "{}" }), 200)
          assert.strictEqual(await proxied("path not allowed", "/keys"), 403)
          assert.strictEqual(
            await proxied("method not allowed", "/ok", {
              method: "DELETE",
              headers: { authorization: `Bearer ${s.token}` }
            }),
            403
          )
          assert.strictEqual(await proxied("traversal", "/v1/..%2Fkeys"), 400)
          assert.strictEqual(await proxied("no token", "/ok", { headers: {} }), 401)
          assert.strictEqual(
            await proxied("the key itself as the token", "/ok", {
              headers: { authorization: `Bearer ${canary}` }
            }),
            401
          )
          assert.strictEqual(
            await proxied("the key in x-api-key", "/ok", {
              headers: { authorization: `Bearer ${s.token}`, "x-api-key": canary }
            }),
            200
          )
          await proxied("the key in the path", `/v1/${canary}`)
          await proxied("the key in the query", `/ok?key=${canary}`)
          const down = await open("proxied-down")
          const unreachable = await fetch(`${down.base}/anything`, { headers: { "x-api-key": down.token } })
          record(
            "unreachable upstream",
            `${unreachable.status}\n${JSON.stringify([...unreachable.headers])}\n${await unreachable.text()}`
          )
          assert.strictEqual(unreachable.status, 502)
          record(
            "revoke",
            (await call(url, "POST", `/v1/sessions/${s.id}/revoke`, { token: agent, body: {} })).text
          )
          assert.strictEqual(await proxied("after revoke", "/ok"), 409)

          // Positive control: the upstream did get the key, injected by the broker.
          assert.include(upstream.seen, `Bearer ${canary}`)
          const audit = await call(url, "GET", "/v1/audit?action=proxy.request&limit=10000", { token: op })
          record("audit", audit.text)
          assert.isAbove(
            ((audit.json.events ?? []) as Array<unknown>).length,
            8,
            "the proxy audited its requests"
          )
          record("audit verify", (await call(url, "GET", "/v1/audit/verify", { token: op })).text)
          record("metrics", (await call(url, "GET", "/metrics")).text)
          for (const { what, text } of seen) {
            assert.deepStrictEqual(
              leaksIn(canary, Buffer.from(text)),
              [],
              `${what} carries the key: ${text.slice(Math.max(0, text.indexOf(canary) - 600), text.indexOf(canary) + 100)}`
            )
          }
        } finally {
          await stop(b)
          await upstream.close()
        }
        assert.deepStrictEqual(
          leaksIn(canary, Buffer.from(b.output())),
          [],
          "broker log output carries the key"
        )
        assert.include(b.output(), "request", "the broker logged (debug level)")
      }),
    120_000
  )
})
