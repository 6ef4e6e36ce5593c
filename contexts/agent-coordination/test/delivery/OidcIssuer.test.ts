import { KeyProvider } from "@aap/key-custody"
import { DynamoDb } from "@aap/local-stack"
import { SecretStore } from "@aap/vault"
import { ScanCommand } from "@aws-sdk/client-dynamodb"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Redacted, Ref, TestClock } from "effect"
import * as Jose from "jose"
import * as OidcIssuer from "../../src/delivery/OidcIssuer.js"
import * as Ports from "../../src/delivery/Ports.js"
import * as JwksServer from "./support/jwksServer.js"

const subject = { agent: "codex", wallet: "codex", session: "ses_0123456789abcdefghjkmnpqrs" }

/** A vault that counts reads and writes of the issuer keyring. */
const countingSecrets = (reads: Ref.Ref<number>, writes: Ref.Ref<number>) =>
  Layer.effect(
    Ports.Secrets,
    Effect.gen(function* () {
      const inner = yield* Ports.Secrets
      return Ports.Secrets.of({
        get: (w, n) => Ref.update(reads, (x) => x + 1).pipe(Effect.zipRight(inner.get(w, n))),
        put: (w, n, v) => Ref.update(writes, (x) => x + 1).pipe(Effect.zipRight(inner.put(w, n, v)))
      })
    })
  ).pipe(Layer.provide(Ports.secretsMemory()))

describe("OidcIssuer", () => {
  it.scopedLive("a minted token verifies against the JWKS fetched over HTTP, as STS would check it", () =>
    Effect.gen(function* () {
      const runtime = yield* Effect.runtime<never>()
      let issuer: OidcIssuer.OidcIssuer["Type"] | undefined
      const server = yield* JwksServer.serve(() => issuer!, runtime)
      const url = `http://127.0.0.1:${server.port}`
      issuer = yield* OidcIssuer.OidcIssuer.pipe(
        Effect.provide(OidcIssuer.layer({ issuer: url }).pipe(Layer.provide(Ports.secretsMemory())))
      )
      const minted = yield* issuer.mint(subject)

      // Discovery → jwks_uri → keys, like AWS.
      const discovery = yield* Effect.promise(() =>
        fetch(`${url}/.well-known/openid-configuration`).then(
          (r) => r.json() as Promise<Record<string, unknown>>
        )
      )
      assert.strictEqual(discovery.issuer, url)
      assert.deepStrictEqual(discovery.id_token_signing_alg_values_supported, ["ES256"])
      const jwks = Jose.createRemoteJWKSet(new URL(String(discovery.jwks_uri)))
      const { payload, protectedHeader } = yield* Effect.promise(() =>
        Jose.jwtVerify(Redacted.value(minted.token), jwks, {
          issuer: url,
          audience: "sts.amazonaws.com",
          algorithms: ["ES256"]
        })
      )
      assert.strictEqual(protectedHeader.alg, "ES256")
      assert.strictEqual(protectedHeader.kid, minted.kid)
      assert.strictEqual(payload.sub, "agent:codex")
      assert.deepStrictEqual(payload["https://aws.amazon.com/tags"], {
        principal_tags: { aap_wallet: ["codex"], aap_agent: ["codex"], aap_session: [subject.session] },
        transitive_tag_keys: ["aap_wallet", "aap_agent", "aap_session"]
      })
      assert.strictEqual(payload.exp! - payload.iat!, 300)
      assert.include(server.hits, "/.well-known/jwks.json")
      // No private part is ever published.
      const published = yield* issuer.jwks
      assert.notInclude(JSON.stringify(published), '"d"')
    })
  )

  it.effect("the keyring is created once in the system wallet, then read from the vault (cached)", () =>
    Effect.gen(function* () {
      const reads = yield* Ref.make(0)
      const writes = yield* Ref.make(0)
      yield* Effect.gen(function* () {
        const issuer = yield* OidcIssuer.OidcIssuer
        yield* issuer.mint(subject)
        yield* issuer.mint(subject)
        assert.strictEqual(yield* Ref.get(writes), 1)
        const r1 = yield* Ref.get(reads)
        yield* TestClock.adjust("61 seconds")
        yield* issuer.mint(subject)
        assert.strictEqual(yield* Ref.get(reads), r1 + 1)
        const stored = yield* Ports.Secrets.pipe(
          Effect.flatMap((s) => s.get("aap.system", "oidc/signing-key"))
        )
        assert.include(Redacted.value(stored), '"d"')
      }).pipe(
        Effect.provide(
          OidcIssuer.layer({ issuer: "https://issuer.example" }).pipe(
            Layer.provideMerge(countingSecrets(reads, writes))
          )
        )
      )
    })
  )

  it.effect("rotation: the old key stays in the JWKS until its tokens expired, then leaves", () =>
    Effect.gen(function* () {
      const issuer = yield* OidcIssuer.OidcIssuer
      yield* TestClock.setTime(1_900_000_000_000)
      const before = yield* issuer.mint(subject)
      const rotated = yield* issuer.rotate
      assert.notStrictEqual(rotated.kid, before.kid)
      const after = yield* issuer.mint(subject)
      assert.strictEqual(after.kid, rotated.kid)

      const verifyAt = (token: Redacted.Redacted<string>, keys: OidcIssuer.PublicJwks, seconds: number) =>
        Effect.promise(() =>
          Jose.jwtVerify(Redacted.value(token), Jose.createLocalJWKSet({ keys: [...keys.keys] }), {
            issuer: "https://issuer.example",
            audience: "sts.amazonaws.com",
            currentDate: new Date(seconds * 1000)
          }).then(
            () => true,
            () => false
          )
        )

      const t0 = 1_900_000_000
      const jwks1 = yield* issuer.jwks
      assert.sameMembers(
        jwks1.keys.map((k) => k.kid),
        [before.kid, after.kid]
      )
      assert.isTrue(yield* verifyAt(before.token, jwks1, t0 + 10))
      assert.isTrue(yield* verifyAt(after.token, jwks1, t0 + 10))

      // Still published just before the retention (token TTL + cache + skew) ends …
      yield* TestClock.adjust(
        `${OidcIssuer.retentionSeconds({ ...OidcIssuer.defaults, issuer: "x" }) - 1} seconds`
      )
      assert.include(
        (yield* issuer.jwks).keys.map((k) => k.kid),
        before.kid
      )
      // … and gone after it.
      yield* TestClock.adjust("2 seconds")
      const jwks2 = yield* issuer.jwks
      assert.deepStrictEqual(
        jwks2.keys.map((k) => k.kid),
        [after.kid]
      )
      assert.isFalse(yield* verifyAt(before.token, jwks2, t0 + 10))
    }).pipe(
      Effect.provide(
        OidcIssuer.layer({ issuer: "https://issuer.example/" }).pipe(Layer.provide(Ports.secretsMemory()))
      )
    )
  )

  it.effect("a vault that is down, or an unreadable keyring, is OidcUnavailable without material", () =>
    Effect.gen(function* () {
      const down = Layer.succeed(
        Ports.Secrets,
        Ports.Secrets.of({
          get: () => Effect.fail(new Ports.SecretsUnavailable({ reason: "store down" })),
          put: () => Effect.fail(new Ports.SecretsUnavailable({ reason: "store down" }))
        })
      )
      const e1 = yield* Effect.flip(
        OidcIssuer.OidcIssuer.pipe(
          Effect.flatMap((i) => i.mint(subject)),
          Effect.provide(OidcIssuer.layer({ issuer: "https://i" }).pipe(Layer.provide(down)))
        )
      )
      assert.strictEqual(e1._tag, "OidcUnavailable")
      const e2 = yield* Effect.flip(
        OidcIssuer.OidcIssuer.pipe(
          Effect.flatMap((i) => i.jwks),
          Effect.provide(
            OidcIssuer.layer({ issuer: "https://i" }).pipe(
              Layer.provide(Ports.secretsMemory([["aap.system", "oidc/signing-key", '{"CANARY":1}']]))
            )
          )
        )
      )
      assert.strictEqual(e2._tag, "OidcUnavailable")
      assert.notInclude(JSON.stringify(e2), "CANARY")
    })
  )
})

describe("OidcIssuer over the real vault on dynalite", () => {
  it.effect("the issuer keyring is stored encrypted: the raw table item holds no private key", () =>
    Effect.gen(function* () {
      const issuer = yield* OidcIssuer.OidcIssuer
      const minted = yield* issuer.mint(subject)
      const { client, tables } = yield* DynamoDb.DynamoDb
      const items = yield* Effect.promise(() => client.send(new ScanCommand({ TableName: tables.vault })))
      const raw = JSON.stringify(items.Items)
      assert.include(raw, "aap.system")
      assert.include(raw, "oidc/signing-key")
      // Neither the JSON keyring nor any part of the private key appears in the stored item.
      assert.notInclude(raw, '"d"')
      assert.notInclude(raw, minted.kid)
      assert.notInclude(raw, "P-256")
      // And it decrypts back through the vault: a second issuer built over the same vault signs with the same key.
      const again = yield* OidcIssuer.make({ ...OidcIssuer.defaults, issuer: "https://issuer.example" })
      const second = yield* again.mint(subject)
      assert.strictEqual(second.kid, minted.kid)
    }).pipe(
      Effect.provide(
        OidcIssuer.layer({ issuer: "https://issuer.example" }).pipe(
          Layer.provideMerge(Ports.secretsFromVault),
          Layer.provideMerge(SecretStore.layerDynamoDb),
          Layer.provideMerge(Layer.merge(DynamoDb.layerEmbedded(), KeyProvider.layerMemory)),
          Layer.orDie
        )
      )
    )
  )
})
