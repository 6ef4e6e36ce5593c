import { HttpApiSchema } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { Catalog } from "../src/index.js"

const tiers = ["low", "medium", "high", "critical"] as const

/** One capability per tier, each allowing only `codex`; max TTL 10m, default 5m. */
const catalog: Catalog.Catalog = Schema.decodeUnknownSync(Catalog.Catalog)({
  schemaVersion: 1,
  agents: [
    { id: "codex", wallet: "codex-wallet" },
    { id: "claude", wallet: "claude" }
  ],
  operators: [{ id: "alice" }, { id: "bob" }],
  capabilities: [
    ...tiers.map((tier) => ({
      id: `${tier}-cap`,
      tier,
      agents: ["codex"],
      ttl: { default: "5m", max: "10m" },
      backing: { type: "bearer-token", secret: "x/token", env: "TOKEN" }
    })),
    {
      id: "critical-two",
      tier: "critical",
      approvals: 2,
      agents: ["codex"],
      ttl: { default: "5m", max: "15m" },
      backing: { type: "bearer-token", secret: "x/token", env: "TOKEN" }
    }
  ]
})

const WITHIN = 600
const ABOVE = 601

describe("authorize: decision matrix (tier × allowed × TTL × break-glass)", () => {
  for (const tier of tiers) {
    for (const allowed of [true, false]) {
      for (const ttl of ["within", "above"] as const) {
        for (const breakGlass of [false, true]) {
          const expected = !allowed
            ? "AgentNotAllowed"
            : ttl === "above"
              ? "TtlTooLong"
              : tier === "critical" && !breakGlass
                ? "BreakGlassRequired"
                : tier === "high" || tier === "critical"
                  ? "NeedsApproval"
                  : "GrantNow"
          it(`${tier}, ${allowed ? "allowed" : "not allowed"}, TTL ${ttl}, breakGlass ${breakGlass} → ${expected}`, () => {
            const result = Catalog.authorize(catalog, allowed ? "codex" : "claude", {
              capability: `${tier}-cap`,
              ttlSeconds: ttl === "within" ? WITHIN : ABOVE,
              breakGlass,
              justification: "incident 42"
            })
            const tag = Either.isRight(result) ? result.right._tag : result.left._tag
            assert.strictEqual(tag, expected)
            if (Either.isRight(result)) {
              const decision = result.right
              assert.strictEqual(decision.wallet, "codex-wallet")
              assert.strictEqual(decision.ttlSeconds, WITHIN)
              assert.strictEqual(decision.tier, tier)
              assert.strictEqual(decision.breakGlass, breakGlass)
              if (decision._tag === "NeedsApproval") assert.strictEqual(decision.approvals, 1)
            }
            if (Either.isLeft(result) && result.left._tag === "TtlTooLong") {
              assert.strictEqual(result.left.requestedSeconds, ABOVE)
              assert.strictEqual(result.left.maxSeconds, WITHIN)
            }
          })
        }
      }
    }
  }
})

describe("authorize: other cases", () => {
  const tagOf = (agent: string, request: Catalog.AuthorizeRequest) => {
    const result = Catalog.authorize(catalog, agent, request)
    return Either.isRight(result) ? result.right._tag : result.left._tag
  }

  it("denies an unknown agent and an unknown capability", () => {
    assert.strictEqual(tagOf("gemini", { capability: "low-cap" }), "UnknownAgent")
    assert.strictEqual(tagOf("codex", { capability: "nope" }), "UnknownCapability")
  })

  it("uses the default TTL when none is requested, and accepts exactly max", () => {
    const byDefault = Either.getOrThrow(Catalog.authorize(catalog, "codex", { capability: "low-cap" }))
    assert.strictEqual(byDefault.ttlSeconds, 300)
    const atMax = Either.getOrThrow(
      Catalog.authorize(catalog, "codex", { capability: "low-cap", ttlSeconds: 600 })
    )
    assert.strictEqual(atMax.ttlSeconds, 600)
  })

  it("rejects a malformed TTL as InvalidRequest (400)", () => {
    assert.strictEqual(tagOf("codex", { capability: "low-cap", ttlSeconds: 0 }), "InvalidRequest")
    assert.strictEqual(tagOf("codex", { capability: "low-cap", ttlSeconds: 1.5 }), "InvalidRequest")
    assert.strictEqual(tagOf("codex", { capability: "low-cap", ttlSeconds: -5 }), "InvalidRequest")
  })

  it("critical needs a non-blank justification and reports the configured approvals", () => {
    assert.strictEqual(
      tagOf("codex", { capability: "critical-cap", breakGlass: true }),
      "JustificationRequired"
    )
    assert.strictEqual(
      tagOf("codex", { capability: "critical-cap", breakGlass: true, justification: "   " }),
      "JustificationRequired"
    )
    const decision = Either.getOrThrow(
      Catalog.authorize(catalog, "codex", {
        capability: "critical-two",
        breakGlass: true,
        justification: " outage "
      })
    )
    assert.strictEqual(decision._tag, "NeedsApproval")
    if (decision._tag === "NeedsApproval") assert.strictEqual(decision.approvals, 2)
    assert.strictEqual(decision.justification, "outage")
  })

  it("denials carry their HTTP status and a message", () => {
    const denial = Either.flip(Catalog.authorize(catalog, "claude", { capability: "low-cap" }))
    const error = Either.getOrThrow(denial)
    assert.strictEqual(error._tag, "AgentNotAllowed")
    assert.strictEqual(error.message, 'agent "claude" may not request "low-cap"')
    const status = HttpApiSchema.getStatusError
    assert.strictEqual(status(Catalog.AgentNotAllowed), 403)
    assert.strictEqual(status(Catalog.TtlTooLong), 403)
    assert.strictEqual(status(Catalog.InvalidRequest), 400)
    assert.strictEqual(status(Catalog.CatalogInvalid), 422)
  })

  it("decisions and denials round-trip through their schemas (they cross the wire)", () => {
    const decision = Either.getOrThrow(Catalog.authorize(catalog, "codex", { capability: "high-cap" }))
    const encoded = Schema.encodeSync(Catalog.Decision)(decision)
    assert.deepStrictEqual(Schema.decodeUnknownSync(Catalog.Decision)(encoded), decision)
    const denial = new Catalog.TtlTooLong({ capability: "x", requestedSeconds: 2, maxSeconds: 1 })
    assert.deepStrictEqual(Schema.encodeSync(Catalog.Denial)(denial), {
      _tag: "TtlTooLong",
      capability: "x",
      requestedSeconds: 2,
      maxSeconds: 1
    })
  })
})
