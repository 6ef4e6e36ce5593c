import { HttpApi, OpenApi } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { Api } from "../src/index.js"

describe("audit HTTP contract", () => {
  const spec = OpenApi.fromApi(HttpApi.make("aap").add(Api.AuditApi))

  it("declares GET /v1/audit and GET /v1/audit/verify with 503 AuditUnavailable", () => {
    assert.deepStrictEqual(Object.keys(spec.paths).sort(), ["/v1/audit", "/v1/audit/verify"])
    const list = spec.paths["/v1/audit"]?.get
    const verify = spec.paths["/v1/audit/verify"]?.get
    assert.isDefined(list?.responses["200"])
    assert.isDefined(list?.responses["503"])
    assert.isDefined(verify?.responses["503"])
    const params = (list?.parameters ?? []).map((p) => p.name).sort()
    for (const name of ["stream", "after", "limit"]) assert.include(params, name)
  })

  it("decodes query strings and rejects bad ones", () => {
    const decode = Schema.decodeUnknownEither(Api.ListParams)
    assert.deepStrictEqual(
      decode({ stream: "vm-01M8ZGR303X793SWFRW3TBWVHY", after: "5", limit: "10" }),
      Either.right({ stream: "vm-01M8ZGR303X793SWFRW3TBWVHY", after: 5, limit: 10 })
    )
    // a stream id is <instance>-<ULID>: nothing that could name a path
    assert.isTrue(Either.isLeft(decode({ stream: "../keys/keyring" })))
    assert.isTrue(Either.isLeft(decode({ stream: "s" })))
    assert.isTrue(Either.isLeft(decode({ after: "-1" })))
    assert.isTrue(Either.isLeft(decode({ limit: "0" })))
    assert.isTrue(Either.isLeft(decode({ limit: "20000" })))
    assert.isTrue(Either.isLeft(decode({ hmac: "XYZ" })))
  })
})
