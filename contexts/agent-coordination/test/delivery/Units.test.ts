import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, FastCheck, Layer } from "effect"
import * as Delivery from "../../src/Delivery.js"
import * as AwsCredentials from "../../src/delivery/AwsCredentials.js"
import * as OidcIssuer from "../../src/delivery/OidcIssuer.js"
import * as Ports from "../../src/delivery/Ports.js"

const withEnv = (env: Record<string, string>) =>
  Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("RoleSessionName", () => {
  it("is always 2–64 characters of [\\w+=,.@-] and keeps the whole session id", () =>
    FastCheck.assert(
      FastCheck.property(
        FastCheck.stringMatching(/^ses_[0-9a-z]{26}$/),
        FastCheck.string({ minLength: 1, maxLength: 80 }),
        (session, agent) => {
          const name = AwsCredentials.roleSessionName(session, agent)
          return /^[\w+=,.@-]{2,64}$/.test(name) && name.endsWith(session)
        }
      )
    ))

  it("reads aap.<agent>.<session> for ordinary ids", () => {
    assert.strictEqual(AwsCredentials.roleSessionName("ses_abc", "codex"), "aap.codex.ses_abc")
    assert.strictEqual(AwsCredentials.roleSessionName("ses_abc", "a".repeat(100)).length, 64)
  })
})

describe("DurationSeconds", () => {
  it("never exceeds the time left, the configured max or 43200, and is never below 900", () =>
    FastCheck.assert(
      FastCheck.property(
        FastCheck.double({ min: -10, max: 100_000, noNaN: true }),
        FastCheck.integer({ min: 900, max: 43_200 }),
        (remaining, max) => {
          const d = AwsCredentials.durationFor(remaining, max)
          return Either.isLeft(d)
            ? remaining < 900 && d.left.minimumSeconds === 900
            : d.right >= 900 && d.right <= remaining && d.right <= max
        }
      )
    ))
})

describe("configuration", () => {
  it.effect("AAP_OIDC_ISSUER must be https (http only on loopback)", () =>
    Effect.gen(function* () {
      const build = (issuer: string) =>
        Effect.flatMap(OidcIssuer.OidcIssuer, (i) => Effect.succeed(i.discovery)).pipe(
          Effect.provide(
            OidcIssuer.layerConfig.pipe(
              Layer.provide(Ports.secretsMemory()),
              Layer.provide(withEnv({ AAP_OIDC_ISSUER: issuer }))
            )
          ),
          Effect.either
        )
      const ok = yield* build("https://aap.example.org/oidc/")
      assert.isTrue(Either.isRight(ok))
      if (Either.isRight(ok)) {
        assert.strictEqual(ok.right.issuer, "https://aap.example.org/oidc")
        assert.strictEqual(ok.right.jwks_uri, "https://aap.example.org/oidc/.well-known/jwks.json")
      }
      assert.isTrue(Either.isRight(yield* build("http://127.0.0.1:8787")))
      for (const bad of ["http://aap.example.org", "aap.example.org", "https://x/?q=1"]) {
        const r = yield* build(bad)
        assert.isTrue(Either.isLeft(r), bad)
        if (Either.isLeft(r)) assert.include(String(r.left), "AAP_OIDC_ISSUER")
      }
    })
  )

  it.effect("delivery config reads the buckets and bounds AAP_STS_MAX_DURATION_SECONDS", () =>
    Effect.gen(function* () {
      const read = (env: Record<string, string>) =>
        Delivery.DeliveryConfig.pipe(
          Effect.provide(Delivery.layerConfig.pipe(Layer.provide(withEnv(env)))),
          Effect.either
        )
      const ok = yield* read({ AAP_MEMORY_BUCKET: "aap-memory" })
      assert.deepStrictEqual(
        Either.map(ok, (c) => [c.buckets.memory_bucket, c.stsMaxDurationSeconds]),
        Either.right(["aap-memory", 3600])
      )
      const bad = yield* read({ AAP_STS_MAX_DURATION_SECONDS: "600" })
      assert.isTrue(Either.isLeft(bad))
      if (Either.isLeft(bad)) assert.include(String(bad.left), "between 900 and 43200")
    })
  )
})
