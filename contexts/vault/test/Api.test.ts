import { KeyProvider } from "@aap/key-custody"
import {
  HttpApi,
  HttpApiBuilder,
  HttpApiClient,
  HttpClient,
  HttpClientResponse,
  HttpServer
} from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { Api, SecretStore } from "../src/index.js"

const CANARY = "sk-or-canary-4b1d"

class TestApi extends HttpApi.make("test").add(Api.SecretsApi) {}

/** Handlers as the broker would write them (minus auth), over the memory store. */
const SecretsLive = HttpApiBuilder.group(TestApi, "secrets", (handlers) =>
  Effect.gen(function* () {
    const store = yield* SecretStore.SecretStore
    return handlers
      .handle("put", ({ path, payload }) => store.put(path.wallet, path.name, payload.value))
      .handle("list", ({ path }) =>
        Effect.map(store.list(path.wallet), (secrets) => new Api.SecretList({ wallet: path.wallet, secrets }))
      )
      .handle("delete", ({ path }) => store.delete(path.wallet, path.name))
  })
)

const makeHandler = () =>
  HttpApiBuilder.toWebHandler(
    HttpApiBuilder.api(TestApi).pipe(
      Layer.provide(SecretsLive),
      Layer.provide(SecretStore.layerMemory),
      Layer.provide(KeyProvider.layerMemory),
      Layer.merge(HttpServer.layerContext)
    )
  )

describe("secrets HTTP contract", () => {
  it("canonicalSecretPath encodes the slashes after /secrets/ and leaves other URLs alone", () => {
    assert.strictEqual(
      Api.canonicalSecretPath("/v1/wallets/codex/secrets/openrouter/api-key?x=1"),
      "/v1/wallets/codex/secrets/openrouter%2Fapi-key?x=1"
    )
    assert.strictEqual(
      Api.canonicalSecretPath("/v1/wallets/codex/secrets/plain"),
      "/v1/wallets/codex/secrets/plain"
    )
    assert.strictEqual(Api.canonicalSecretPath("/v1/wallets/codex/secrets"), "/v1/wallets/codex/secrets")
    assert.strictEqual(Api.canonicalSecretPath("/v1/sessions/a/b"), "/v1/sessions/a/b")
  })

  it.scoped("put, list and delete over the contract; names with '/' raw or percent-encoded", () =>
    Effect.gen(function* () {
      const { handler, dispose } = makeHandler()
      yield* Effect.addFinalizer(() => Effect.promise(dispose))
      const call = (method: string, path: string, body?: unknown) =>
        Effect.promise(async () => {
          const response = await handler(
            // What the broker does before routing: raw slashes in a name become one segment.
            new Request(`http://vault.test${Api.canonicalSecretPath(path)}`, {
              method,
              ...(body === undefined
                ? {}
                : { body: JSON.stringify(body), headers: { "content-type": "application/json" } })
            })
          )
          return { status: response.status, body: (await response.json()) as Record<string, unknown> }
        })

      const first = yield* call("PUT", "/v1/wallets/codex/secrets/openrouter%2Fapi-key", { value: CANARY })
      assert.strictEqual(first.status, 200)
      assert.deepInclude(first.body, { name: "openrouter/api-key", version: 1 })
      const second = yield* call("PUT", "/v1/wallets/codex/secrets/openrouter/api-key", { value: CANARY })
      assert.deepInclude(second.body, { name: "openrouter/api-key", version: 2 })

      const list = yield* call("GET", "/v1/wallets/codex/secrets")
      assert.strictEqual(list.status, 200)
      const secrets = list.body.secrets as Array<Record<string, unknown>>
      assert.deepStrictEqual(
        secrets.map((s) => [s.name, s.version, s.versions]),
        [["openrouter/api-key", 2, 2]]
      )
      assert.isString(secrets[0]?.createdAt)
      assert.notInclude(JSON.stringify(list.body), CANARY)

      const badName = yield* call("PUT", "/v1/wallets/codex/secrets/a%23b", { value: CANARY })
      assert.strictEqual(badName.status, 400)
      assert.strictEqual(badName.body._tag, "InvalidSecretName")
      const badWallet = yield* call("GET", "/v1/wallets/a..b/secrets")
      assert.deepStrictEqual([badWallet.status, badWallet.body._tag], [400, "InvalidWallet"])
      const tooLarge = yield* call("PUT", "/v1/wallets/codex/secrets/big", { value: "x".repeat(65_537) })
      assert.deepStrictEqual([tooLarge.status, tooLarge.body._tag], [413, "SecretTooLarge"])
      for (const response of [badName, tooLarge]) assert.notInclude(JSON.stringify(response.body), CANARY)

      const deleted = yield* call("DELETE", "/v1/wallets/codex/secrets/openrouter/api-key")
      assert.deepStrictEqual([deleted.status, deleted.body.version], [200, 3])
      const again = yield* call("DELETE", "/v1/wallets/codex/secrets/openrouter%2Fapi-key")
      assert.deepStrictEqual([again.status, again.body._tag], [404, "SecretNotFound"])
    })
  )

  it.scoped("the typed client encodes '/' in names itself and decodes errors by tag", () =>
    Effect.gen(function* () {
      const { handler, dispose } = makeHandler()
      yield* Effect.addFinalizer(() => Effect.promise(dispose))
      const seen: Array<string> = []
      const httpClient = HttpClient.make((request, url) =>
        Effect.promise(async () => {
          seen.push(url.pathname)
          const body = request.body._tag === "Uint8Array" ? request.body.body : undefined
          const response = await handler(
            new Request(url, { method: request.method, headers: request.headers, ...(body ? { body } : {}) })
          )
          return HttpClientResponse.fromWeb(request, response)
        })
      )
      const client = yield* HttpApiClient.make(TestApi, { baseUrl: "http://vault.test" }).pipe(
        Effect.provideService(HttpClient.HttpClient, httpClient)
      )
      const written = yield* client.secrets.put({
        path: { wallet: "claude", name: "anthropic/api-key" },
        payload: new Api.PutSecretRequest({ value: Redacted.make(CANARY) })
      })
      assert.strictEqual(written.version, 1)
      assert.deepStrictEqual(seen, ["/v1/wallets/claude/secrets/anthropic%2Fapi-key"])
      const listed = yield* client.secrets.list({ path: { wallet: "claude" } })
      assert.deepStrictEqual(
        listed.secrets.map((s) => s.name),
        ["anthropic/api-key"]
      )
      assert.instanceOf(listed.secrets[0]?.updatedAt, Date)
      const missing = yield* Effect.flip(
        client.secrets.delete({ path: { wallet: "claude", name: "nope/x" } })
      )
      assert.strictEqual(missing._tag, "SecretNotFound")
    })
  )
})
