import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { HttpApi, OpenApi } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { Api, Catalog, CatalogFile } from "../src/index.js"

const example = fileURLToPath(new URL("../../../examples/catalog.yaml", import.meta.url))
const catalog = Either.getOrThrow(CatalogFile.parse(readFileSync(example, "utf8")))

describe("Api", () => {
  it("view lists only the agent's capabilities, with no secret names, ARNs or upstreams", () => {
    const view = Either.getOrThrow(Api.view(catalog, "claude"))
    assert.strictEqual(view.wallet, "claude")
    assert.deepStrictEqual(
      view.capabilities.map((c) => c.id),
      catalog.capabilities.filter((c) => c.agents.some((a) => a === "claude")).map((c) => c.id)
    )
    const wire = JSON.stringify(Schema.encodeSync(Api.CatalogView)(view))
    for (const secret of [
      "openrouter/api-key",
      "management-key",
      "anthropic/api-key",
      "arn:aws",
      "api.anthropic.com",
      "forgejo/pat"
    ]) {
      assert.notInclude(wire, secret)
    }
    const proxied = view.capabilities.find((c) => c.id === "anthropic-messages")
    assert.deepStrictEqual([proxied?.proxied, proxied?.env, proxied?.forward], [true, [], false])
    const forge = view.capabilities.find((c) => c.id === "forgejo-pr")
    assert.deepStrictEqual(forge?.env, ["GITEA_TOKEN"])
  })

  it("view marks the forward-proxy mode (proxy.connect present, even empty) without naming its hosts", () => {
    const withConnect = (connect: ReadonlyArray<string> | undefined) =>
      Schema.decodeUnknownSync(Catalog.Catalog)({
        schemaVersion: 1,
        agents: [{ id: "codex", wallet: "codex" }],
        operators: [{ id: "alice" }],
        capabilities: [
          {
            id: "llm",
            tier: "low",
            agents: ["codex"],
            ttl: { default: "15m", max: "1h" },
            backing: {
              type: "bearer-token",
              secret: "llm/key",
              env: "LLM_API_KEY",
              proxy: {
                upstream: "https://llm.example.org",
                header: "Authorization",
                paths: ["/*"],
                methods: ["GET"],
                ...(connect === undefined ? {} : { connect })
              }
            }
          }
        ]
      })
    const forwardOf = (connect: ReadonlyArray<string> | undefined) => {
      const view = Either.getOrThrow(Api.view(withConnect(connect), "codex"))
      const wire = JSON.stringify(Schema.encodeSync(Api.CatalogView)(view))
      assert.notInclude(wire, "blind.example.org")
      return view.capabilities[0]?.forward
    }
    assert.deepStrictEqual(
      [forwardOf(undefined), forwardOf([]), forwardOf(["blind.example.org:443"])],
      [false, true, true]
    )
  })

  it("view reports critical capabilities as break-glass with their approvals", () => {
    const view = Either.getOrThrow(Api.view(catalog, "codex"))
    const admin = view.capabilities.find((c) => c.id === "break-glass-admin")
    assert.deepStrictEqual([admin?.breakGlass, admin?.approvals, admin?.maxTtlSeconds], [true, 2, 900])
  })

  it("view of an agent that is not in the catalog is UnknownAgent", () => {
    const view = Api.view(catalog, "gemini")
    assert.isTrue(Either.isLeft(view) && view.left._tag === "UnknownAgent")
  })

  it("the group documents its endpoints and error statuses", () => {
    const spec = OpenApi.fromApi(HttpApi.make("test").add(Api.CatalogApi))
    const list = spec.paths["/v1/catalog"]?.get
    const reload = spec.paths["/v1/catalog/reload"]?.post
    assert.isDefined(list?.responses["200"])
    assert.isDefined(list?.responses["403"])
    assert.isDefined(reload?.responses["200"])
    assert.isDefined(reload?.responses["422"])
  })
})
