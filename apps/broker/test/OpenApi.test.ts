import * as Fs from "node:fs"
import * as Path from "node:path"
import { OpenApi } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Api } from "../src/Api.js"

const file = Path.resolve(__dirname, "../../../docs/api/openapi.json")

describe("OpenAPI", () => {
  it("docs/api/openapi.json is current (regenerate: pnpm --filter @aap/broker openapi)", () => {
    const committed = JSON.parse(Fs.readFileSync(file, "utf8"))
    assert.deepStrictEqual(committed, JSON.parse(JSON.stringify(OpenApi.fromApi(Api))))
  })

  it("every endpoint of DESIGN §10 is in the document", () => {
    const spec = OpenApi.fromApi(Api)
    const ops = Object.entries(spec.paths).flatMap(([path, item]) =>
      Object.keys(item as object).map((method) => `${method.toUpperCase()} ${path}`)
    )
    for (const expected of [
      "GET /healthz",
      "GET /readyz",
      "GET /metrics",
      "POST /v1/link-codes/redeem",
      "GET /v1/catalog",
      "POST /v1/catalog/reload",
      "POST /v1/sessions",
      "GET /v1/sessions",
      "GET /v1/sessions/{id}",
      "POST /v1/sessions/{id}/revoke",
      "POST /v1/sessions/{id}/approve",
      "POST /v1/sessions/{id}/deny",
      "POST /v1/agents/{id}/link-codes",
      "GET /v1/audit",
      "GET /v1/audit/verify"
    ]) {
      assert.include(ops, expected)
    }
  })

  it("authenticated endpoints declare bearer security and 401", () => {
    const spec = OpenApi.fromApi(Api)
    const op = (
      spec.paths["/v1/sessions"] as Record<string, { security?: unknown; responses: Record<string, unknown> }>
    ).post
    assert.isDefined(op?.security)
    assert.property(op?.responses ?? {}, "401")
    assert.property(op?.responses ?? {}, "403")
  })
})
