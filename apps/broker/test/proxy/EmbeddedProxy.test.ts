/**
 * The egress proxy end to end in the embedded broker: the operator stores the key, the agent
 * gets a proxy credential (never the key), calls the local HTTPS upstream through
 * `/v1/proxy/<session>/...`, and revoking the session cuts it off on the next request.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Duration, Effect, type Layer, ManagedRuntime } from "effect"
import * as Broker from "../../src/Broker.js"
import * as BrokerConfig from "../../src/BrokerConfig.js"
import { call, post, tempHome } from "../support.js"
import { KEY, makeTls, startUpstream, type Upstream } from "./support.js"

let upstream: Upstream | undefined
let runtime: ManagedRuntime.ManagedRuntime<Broker.BrokerInfo | Broker.BrokerBootstrap, unknown> | undefined

afterAll(async () => {
  await runtime?.dispose()
  upstream?.server.close()
  delete process.env.AAP_PROXY_UPSTREAM_CA_FILE
})

describe("egress proxy in the embedded broker", () => {
  it("delivery returns a proxy credential; the proxy injects the key; revocation cuts off the next request", async () => {
    const tls = makeTls()
    upstream = await startUpstream(tls)
    const home = tempHome()
    const caFile = Path.join(home, "upstream-ca.pem")
    Fs.writeFileSync(caFile, tls.cert)
    process.env.AAP_PROXY_UPSTREAM_CA_FILE = caFile
    const catalogPath = Path.join(home, "catalog.yaml")
    Fs.writeFileSync(
      catalogPath,
      [
        "schemaVersion: 1",
        "agents:",
        "  - { id: codex, wallet: codex }",
        "operators:",
        "  - { id: alice }",
        "capabilities:",
        "  - id: llm",
        "    tier: low",
        "    agents: [codex]",
        "    ttl: { default: 15m, max: 1h }",
        "    backing:",
        "      type: bearer-token",
        "      secret: llm/api-key",
        "      env: OPENROUTER_API_KEY",
        "      proxy:",
        `        upstream: ${upstream.url}/api`,
        "        header: Authorization",
        "        scheme: Bearer",
        "        paths: [/api/v1/small, /api/v1/chat/*]",
        "        methods: [GET, POST]",
        ""
      ].join("\n")
    )
    const config = BrokerConfig.make({
      home,
      listen: { host: "127.0.0.1", port: 0 },
      catalogPath,
      requestTimeout: Duration.seconds(10),
      logLevel: "none"
    })
    runtime = ManagedRuntime.make(
      Broker.layer(config) as Layer.Layer<Broker.BrokerInfo | Broker.BrokerBootstrap>
    )
    const received: Array<string> = []
    const run = <A>(e: Effect.Effect<A>) => Effect.runPromise(e)
    const { url } = await runtime.runPromise(Broker.BrokerInfo)
    const boot = await runtime.runPromise(Broker.BrokerBootstrap)
    const op = Fs.readFileSync(boot.tokenFile, "utf8").trim()

    const put = await run(
      call(url, "PUT", "/v1/wallets/codex/secrets/llm%2Fapi-key", {
        token: op,
        body: JSON.stringify({ value: KEY })
      })
    )
    assert.include([200, 201], put.status, put.text)
    const code = (await run(post(url, "/v1/agents/codex/link-codes", op))).json.code as string
    const agent = (await run(post(url, "/v1/link-codes/redeem", undefined, { code }))).json.token as string
    const session = await run(post(url, "/v1/sessions", agent, { capability: "llm" }))
    assert.strictEqual(session.status, 201, session.text)
    const id = session.json.id as string

    const delivered = await run(post(url, `/v1/sessions/${id}/credentials`, agent, {}))
    received.push(delivered.text)
    assert.strictEqual(delivered.status, 200, delivered.text)
    const credential = delivered.json.credential as Record<string, string>
    assert.strictEqual(credential._tag, "proxy")
    assert.strictEqual(credential.baseUrl, `${url}/v1/proxy/${id}`)
    const env = delivered.json.env as Record<string, string>
    assert.strictEqual(env.OPENROUTER_BASE_URL, credential.baseUrl)
    assert.strictEqual(env.OPENROUTER_API_KEY, credential.token)

    const proxied = (path: string, method = "GET") =>
      run(
        call(url, method, `/v1/proxy/${id}${path}`, {
          headers: { authorization: `Bearer ${credential.token}` }
        })
      )
    const ok = await proxied("/v1/small")
    received.push(ok.text, JSON.stringify([...ok.headers]))
    assert.strictEqual(ok.status, 200, ok.text)
    assert.strictEqual(ok.text, '{"ok":true}')
    assert.strictEqual(upstream.seen.at(-1)?.authorization, `Bearer ${KEY}`)

    const refused = await proxied("/v1/keys")
    received.push(refused.text)
    assert.strictEqual(refused.status, 403)
    assert.strictEqual(refused.json._tag, "PathNotAllowed")

    const revoked = await run(post(url, `/v1/sessions/${id}/revoke`, agent, {}))
    assert.strictEqual(revoked.status, 200, revoked.text)
    const after = await proxied("/v1/small")
    received.push(after.text)
    assert.strictEqual(after.status, 409, after.text)
    assert.strictEqual(after.json._tag, "SessionNotActive")

    const audit = await run(call(url, "GET", "/v1/audit?action=proxy.request&limit=1000", { token: op }))
    assert.include(audit.text, "proxy.request")
    assert.notInclude(audit.text, KEY)
    for (const r of received) assert.notInclude(r, KEY)
  })
})
