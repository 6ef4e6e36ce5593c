import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Redacted } from "effect"
import { Envelope, KeyProvider, SystemKeys } from "../src/index.js"

describe("smoke", () => {
  it.effect("seal/open round trip on the memory keyring", () =>
    Effect.gen(function* () {
      const address = { wallet: "codex", name: "openrouter/api-key", version: 1 }
      const env = yield* Envelope.seal(address, Redacted.make("sk-canary"))
      const text = yield* Envelope.openText(address, env)
      assert.strictEqual(Redacted.value(text), "sk-canary")
      const decoded = Envelope.decode(Envelope.encode(env))
      assert.isTrue(Either.isRight(decoded))
      const sk = yield* SystemKeys.SystemKeys
      const hmac = yield* sk.hmac("audit-hmac", "x")
      assert.strictEqual(hmac.length, 64)
    }).pipe(Effect.provide(KeyProvider.layerMemory))
  )
})
