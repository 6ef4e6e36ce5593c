/**
 * The delivery contract over a real socket: an `HttpApi` made of the delivery group behind a
 * bearer middleware that authenticates with the coordination context's real `Identities`
 * (as the broker does, ADR 0050), served on 127.0.0.1, called with `fetch` and with the typed
 * `HttpApiClient`. A bad or revoked token is 401 with zero STS calls and zero vault reads.
 */
import * as Http from "node:http"
import { SystemKeys } from "@aap/key-custody"
import {
  FetchHttpClient,
  HttpApi,
  HttpApiBuilder,
  HttpApiClient,
  HttpApiMiddleware,
  HttpApiSecurity,
  HttpClient,
  HttpClientRequest,
  HttpServer
} from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, ManagedRuntime, Redacted, Schema } from "effect"
import * as CoordinationStore from "../../src/CoordinationStore.js"
import { Delivery } from "../../src/Delivery.js"
import * as DeliveryApi from "../../src/delivery/Api.js"
import { Unauthorized } from "../../src/Errors.js"
import * as Identities from "../../src/Identities.js"
import * as IdentityRepository from "../../src/IdentityRepository.js"
import type * as Principal from "../../src/Principal.js"
import * as H from "./support/harness.js"

class CurrentAgent extends Context.Tag("test/CurrentAgent")<CurrentAgent, Principal.Agent>() {}

class AgentAuth extends HttpApiMiddleware.Tag<AgentAuth>()("test/AgentAuth", {
  failure: Schema.Union(Unauthorized),
  provides: CurrentAgent,
  security: { bearer: HttpApiSecurity.bearer }
}) {}

class TestApi extends HttpApi.make("test").add(DeliveryApi.DeliveryGroup.middleware(AgentAuth)) {}

const AuthLive = Layer.effect(
  AgentAuth,
  Effect.map(Identities.Identities, (ids) =>
    AgentAuth.of({
      bearer: (token) =>
        ids.authenticate(token).pipe(
          Effect.catchTag("Unavailable", () => Effect.fail(new Unauthorized({ message: "unavailable" }))),
          Effect.flatMap((p) =>
            p._tag === "agent" ? Effect.succeed(p) : Effect.fail(new Unauthorized({ message: "agents only" }))
          )
        )
    })
  )
)

const DeliveryLive = HttpApiBuilder.group(TestApi, "delivery", (handlers) =>
  handlers.handle("deliver", ({ path, payload }) =>
    Effect.flatMap(CurrentAgent, (agent) =>
      Effect.flatMap(Delivery, (d) => d.deliver(agent, path.id, payload))
    )
  )
)

const serve = (handler: (r: Request) => Promise<Response>) =>
  Effect.acquireRelease(
    Effect.async<{ server: Http.Server; url: string }>((resume) => {
      const server = Http.createServer(async (req, res) => {
        const chunks: Array<Buffer> = []
        for await (const c of req) chunks.push(c as Buffer)
        const headers = new Headers()
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers.set(k, v)
        const response = await handler(
          new Request(`http://127.0.0.1${req.url ?? "/"}`, {
            method: req.method ?? "GET",
            headers,
            ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {})
          })
        )
        res.writeHead(response.status, Object.fromEntries(response.headers.entries()))
        res.end(Buffer.from(await response.arrayBuffer()))
      })
      server.listen(0, "127.0.0.1", () => {
        const addr = server.address()
        resume(
          Effect.succeed({
            server,
            url: `http://127.0.0.1:${typeof addr === "object" && addr !== null ? addr.port : 0}`
          })
        )
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )

const setup = Effect.gen(function* () {
  const { env, layer } = H.makeEnv({})
  yield* Effect.addFinalizer(() => Effect.sync(() => env.sts.restore()))
  const full = Identities.layer.pipe(
    Layer.provide(
      IdentityRepository.layer.pipe(
        Layer.provide(Layer.merge(CoordinationStore.layerMemory, SystemKeys.layerMemory))
      )
    ),
    Layer.provideMerge(layer)
  )
  const memoMap = yield* Layer.makeMemoMap
  const runtime = ManagedRuntime.make(full, memoMap)
  yield* Effect.addFinalizer(() => Effect.promise(() => runtime.dispose()))
  const web = HttpApiBuilder.toWebHandler(
    Layer.mergeAll(
      HttpApiBuilder.api(TestApi).pipe(
        Layer.provide(DeliveryLive),
        Layer.provide(AuthLive),
        Layer.provide(full)
      ),
      HttpServer.layerContext
    ),
    { memoMap }
  )
  yield* Effect.addFinalizer(() => Effect.promise(() => web.dispose()))
  const { url } = yield* serve(web.handler)
  const alice = { _tag: "operator" as const, id: "alice" }
  const issue = (agent: string) =>
    Effect.promise(() =>
      runtime.runPromise(
        Effect.flatMap(Identities.Identities, (ids) => ids.issueToken(alice, { type: "agent", id: agent }))
      )
    ).pipe(Effect.map((m) => m.token))
  const run = <A, E>(effect: Effect.Effect<A, E, ManagedRuntime.ManagedRuntime.Context<typeof runtime>>) =>
    Effect.promise(() => runtime.runPromise(effect))
  const post = (token: string, id: string, body: unknown = {}) =>
    Effect.promise(async () => {
      const r = await fetch(`${url}/v1/sessions/${id}/credentials`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(body)
      })
      return { status: r.status, body: (await r.json()) as Record<string, unknown> }
    })
  const client = (token: Redacted.Redacted<string>) =>
    HttpApiClient.make(TestApi, {
      baseUrl: url,
      transformClient: HttpClient.mapRequest(HttpClientRequest.bearerToken(Redacted.value(token)))
    }).pipe(Effect.provide(FetchHttpClient.layer))
  return { env, url, issue, run, post, client, runtime }
})

describe("POST /v1/sessions/{id}/credentials over a real socket", () => {
  it.scopedLive(
    "the Class B secret is a string field only on the wire; the typed client gets it Redacted",
    () =>
      Effect.gen(function* () {
        const t = yield* setup
        const token = yield* t.issue("codex")
        const s = yield* t.run(t.env.session(H.codex, "openrouter-chat", 900))
        const raw = yield* t.post(Redacted.value(token), s.id)
        assert.strictEqual(raw.status, 200)
        assert.deepInclude(raw.body.credential as object, {
          _tag: "bearer-token",
          token: H.CANARY.bearer,
          provisioned: false
        })
        assert.deepStrictEqual(raw.body.env, { OPENROUTER_API_KEY: H.CANARY.bearer })
        assert.strictEqual(raw.body.session, s.id)

        const api = yield* t.client(token)
        const typed = yield* api.delivery.deliver({ path: { id: s.id }, payload: {} })
        assert.strictEqual(typed.credential._tag, "bearer-token")
        if (typed.credential._tag === "bearer-token") {
          assert.isTrue(Redacted.isRedacted(typed.credential.token))
          assert.strictEqual(Redacted.value(typed.credential.token), H.CANARY.bearer)
        }
      })
  )

  it.scopedLive("a bad token and a revoked token are 401 with zero STS calls and zero vault reads", () =>
    Effect.gen(function* () {
      const t = yield* setup
      const token = yield* t.issue("codex")
      const s = yield* t.run(t.env.session(H.codex, "memory-s3", 1800))
      for (const bad of ["", "not-a-token", `${Redacted.value(token).slice(0, -2)}xx`]) {
        const r = yield* t.post(bad, s.id)
        assert.strictEqual(r.status, 401, bad)
      }
      yield* t.run(Effect.flatMap(Identities.Identities, (ids) => ids.revokeToken(token)))
      const revoked = yield* t.post(Redacted.value(token), s.id)
      assert.strictEqual(revoked.status, 401)
      assert.strictEqual(revoked.body._tag, "Unauthorized")
      assert.strictEqual(H.stsCalls(t.env), 0)
      assert.strictEqual(t.env.counters.vaultReads, 0)
    })
  )

  it.scopedLive(
    "typed errors carry their statuses: 404 another agent's, 410 expired, 409 revoked, 400 bad key",
    () =>
      Effect.gen(function* () {
        const t = yield* setup
        const codexToken = Redacted.value(yield* t.issue("codex"))
        const theirs = yield* t.run(t.env.session(H.claude, "ses-send", 3600))
        const expired = yield* t.run(t.env.session(H.codex, "memory-s3", 1800, "expired"))
        const revoked = yield* t.run(t.env.session(H.codex, "memory-s3", 1800, "revoked"))
        const ssh = yield* t.run(t.env.session(H.codex, "ssh-platform-host", 600))
        const cases: ReadonlyArray<readonly [string, unknown, number, string]> = [
          [theirs.id, {}, 404, "NotFound"],
          ["ses_missing", {}, 404, "NotFound"],
          [expired.id, {}, 410, "Expired"],
          [revoked.id, {}, 409, "SessionNotActive"],
          [ssh.id, { publicKey: "ssh-dss AAAA" }, 400, "InvalidPublicKey"],
          [ssh.id, { publicKey: 42 }, 400, "HttpApiDecodeError"]
        ]
        for (const [id, body, status, tag] of cases) {
          const r = yield* t.post(codexToken, id, body)
          assert.strictEqual(r.status, status, `${id} ${tag}`)
          assert.strictEqual(r.body._tag, tag)
        }
        assert.strictEqual(H.stsCalls(t.env), 0)
        assert.strictEqual(t.env.counters.vaultReads, 0)
      })
  )
})
