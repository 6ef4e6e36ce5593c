import { FetchHttpClient } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import * as Provisioner from "../../src/delivery/Provisioner.js"
import * as FakeOpenRouter from "./support/fakeOpenRouter.js"

const MGMT = "mgmt-key-CANARY-0001"

const withProvisioner = <A, E>(
  f: (p: Provisioner.Provisioner["Type"], fake: FakeOpenRouter.FakeOpenRouter) => Effect.Effect<A, E>
) =>
  Effect.gen(function* () {
    const fake = yield* FakeOpenRouter.start(MGMT)
    const p = yield* Provisioner.Provisioner.pipe(
      Effect.provide(
        Provisioner.layerOpenRouter({ baseUrl: fake.baseUrl }).pipe(Layer.provide(FetchHttpClient.layer))
      )
    )
    return yield* f(p, fake)
  })

describe("Provisioner (OpenRouter) against a loopback server following the documented API", () => {
  it.scoped(
    "mint posts {name, limit, expires_at} with the management key as Bearer and returns key + hash",
    () =>
      withProvisioner((p, fake) =>
        Effect.gen(function* () {
          const expiresAt = new Date("2030-01-01T00:15:00.000Z")
          const minted = yield* p.mint({
            managementKey: Redacted.make(MGMT),
            name: "aap ses_x codex",
            limitUsd: 2.5,
            expiresAt
          })
          assert.strictEqual(fake.requests.length, 1)
          const [r] = fake.requests
          assert.strictEqual(r?.method, "POST")
          assert.strictEqual(r?.path, "/api/v1/keys")
          assert.strictEqual(r?.authorization, `Bearer ${MGMT}`)
          assert.deepStrictEqual(r?.body, {
            name: "aap ses_x codex",
            limit: 2.5,
            expires_at: "2030-01-01T00:15:00.000Z"
          })
          assert.isTrue(fake.keys.has(minted.hash))
          assert.strictEqual(Redacted.value(minted.key), fake.keys.get(minted.hash)?.key)
          assert.notInclude(String(minted.key), "sk-or")
        })
      )
  )

  it.scoped("limit is omitted when the catalog sets none", () =>
    withProvisioner((p, fake) =>
      Effect.gen(function* () {
        yield* p.mint({
          managementKey: Redacted.make(MGMT),
          name: "n",
          expiresAt: new Date(1_900_000_000_000)
        })
        assert.deepStrictEqual(Object.keys(fake.requests[0]?.body as object).sort(), ["expires_at", "name"])
      })
    )
  )

  it.scoped("revoke deletes by hash, and revoking again (404) still succeeds", () =>
    withProvisioner((p, fake) =>
      Effect.gen(function* () {
        const minted = yield* p.mint({
          managementKey: Redacted.make(MGMT),
          name: "n",
          expiresAt: new Date(1_900_000_000_000)
        })
        yield* p.revoke(Redacted.make(MGMT), minted.hash)
        assert.isFalse(fake.keys.has(minted.hash))
        assert.strictEqual(fake.requests[1]?.method, "DELETE")
        assert.strictEqual(fake.requests[1]?.path, `/api/v1/keys/${minted.hash}`)
        assert.strictEqual(fake.requests[1]?.authorization, `Bearer ${MGMT}`)
        yield* p.revoke(Redacted.make(MGMT), minted.hash)
      })
    )
  )

  it.scoped("a wrong management key is refused (401) and the error carries no key material", () =>
    withProvisioner((p) =>
      Effect.gen(function* () {
        const e = yield* Effect.flip(
          p.mint({
            managementKey: Redacted.make("wrong-CANARY"),
            name: "n",
            expiresAt: new Date(1_900_000_000_000)
          })
        )
        assert.deepStrictEqual(
          { kind: e.kind, status: e.status, op: e.operation },
          { kind: "refused", status: 401, op: "mint" }
        )
        assert.notInclude(JSON.stringify(e), "CANARY")
      })
    )
  )

  it.scoped("5xx and 429 are unreachable (retryable), not refused", () =>
    withProvisioner((p, fake) =>
      Effect.gen(function* () {
        fake.failNext = { status: 503, count: 1 }
        const a = yield* Effect.flip(
          p.mint({ managementKey: Redacted.make(MGMT), name: "n", expiresAt: new Date(1_900_000_000_000) })
        )
        assert.strictEqual(a.kind, "unreachable")
        fake.failNext = { status: 429, count: 1 }
        const b = yield* Effect.flip(p.revoke(Redacted.make(MGMT), "abc"))
        assert.deepStrictEqual({ kind: b.kind, status: b.status }, { kind: "unreachable", status: 429 })
      })
    )
  )

  it.scoped("a closed port is unreachable", () =>
    Effect.gen(function* () {
      const p = yield* Provisioner.Provisioner.pipe(
        Effect.provide(
          Provisioner.layerOpenRouter({ baseUrl: "http://127.0.0.1:1", timeout: "2 seconds" }).pipe(
            Layer.provide(FetchHttpClient.layer)
          )
        )
      )
      const e = yield* Effect.flip(
        p.mint({ managementKey: Redacted.make(MGMT), name: "n", expiresAt: new Date(1_900_000_000_000) })
      )
      assert.strictEqual(e.kind, "unreachable")
    })
  )
})
