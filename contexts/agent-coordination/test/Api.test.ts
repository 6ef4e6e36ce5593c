import { HttpApi, HttpApiSchema, OpenApi } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { DateTime, Redacted, Schema } from "effect"
import * as Api from "../src/Api.js"
import * as Errors from "../src/Errors.js"

const api = HttpApi.make("test").add(Api.SessionsApi).add(Api.LinkCodesApi).add(Api.EnrolmentApi)
const spec = OpenApi.fromApi(api)

const statuses = (path: string, method: "get" | "post") =>
  Object.keys(spec.paths[path]?.[method]?.responses ?? {}).sort()

describe("HTTP contract", () => {
  it("declares every endpoint with its success and error statuses", () => {
    assert.deepStrictEqual(statuses("/v1/sessions", "post"), ["201", "400", "403", "429", "500", "503"])
    assert.deepStrictEqual(statuses("/v1/sessions", "get"), ["200", "400", "403", "500", "503"])
    assert.deepStrictEqual(statuses("/v1/sessions/{id}", "get"), ["200", "400", "404", "500", "503"])
    assert.deepStrictEqual(statuses("/v1/sessions/{id}/revoke", "post"), [
      "200",
      "400",
      "403",
      "404",
      "409",
      "410",
      "500",
      "503"
    ])
    for (const verb of ["approve", "deny"]) {
      assert.deepStrictEqual(statuses(`/v1/sessions/{id}/${verb}`, "post"), [
        "200",
        "400",
        "403",
        "404",
        "409",
        "410",
        "500",
        "503"
      ])
    }
    assert.deepStrictEqual(statuses("/v1/agents/{id}/link-codes", "post"), [
      "201",
      "400",
      "403",
      "404",
      "503"
    ])
    assert.deepStrictEqual(statuses("/v1/link-codes/redeem", "post"), ["200", "400", "401", "503"])
    // the contract itself carries no authentication
    assert.deepStrictEqual(spec.paths["/v1/sessions"]?.post?.security ?? [], [])
    assert.deepStrictEqual(spec.security, [])
  })

  it("gives every wire error its status", () => {
    const expected: Array<[Schema.Schema.Any, number]> = [
      [Errors.Unauthorized, 401],
      [Errors.Forbidden, 403],
      [Errors.SelfApproval, 403],
      [Errors.UnknownOperator, 403],
      [Errors.RequestDenied, 403],
      [Errors.NotFound, 404],
      [Errors.Conflict, 409],
      [Errors.DuplicateApprover, 409],
      [Errors.Expired, 410],
      [Errors.RateLimited, 429],
      [Errors.BadRequest, 400],
      [Errors.InvalidCursor, 400],
      [Errors.Tampered, 500],
      [Errors.Unavailable, 503]
    ]
    for (const [schema, status] of expected) assert.strictEqual(HttpApiSchema.getStatusError(schema), status)
  })

  it("puts secrets on the wire only as plain strings in the body and Redacted everywhere else", () => {
    const enrolment = { agent: "codex", token: Redacted.make("aap_agt_CANARY") }
    const encoded = Schema.encodeSync(Api.Enrolment)(enrolment)
    assert.deepStrictEqual(encoded, { agent: "codex", token: "aap_agt_CANARY" })
    const decoded = Schema.decodeSync(Api.Enrolment)(encoded)
    assert.isTrue(Redacted.isRedacted(decoded.token))
    assert.notInclude(String(decoded.token), "CANARY")
    const issued = Schema.encodeSync(Api.IssuedLinkCode)({
      code: Redacted.make("ABCD-EFGH-JKMN-PQRS"),
      expiresAt: DateTime.unsafeMake("2026-11-22T10:10:00.000Z")
    })
    assert.deepStrictEqual(issued, { code: "ABCD-EFGH-JKMN-PQRS", expiresAt: "2026-11-22T10:10:00.000Z" })
  })

  it("rejects malformed session ids and list parameters at the edge", () => {
    assert.isTrue(Schema.is(Api.SessionPath)({ id: "ses_0123456789abcdefghjkmnpqrs" }))
    assert.isFalse(Schema.is(Api.SessionPath)({ id: "../etc/passwd" }))
    const params = Schema.decodeUnknownEither(Api.ListParams)
    assert.isTrue(params({ status: "pending_approval", limit: "20" })._tag === "Right")
    assert.isTrue(params({ status: "nonsense" })._tag === "Left")
    assert.isTrue(params({ limit: "1000" })._tag === "Left")
  })
})
