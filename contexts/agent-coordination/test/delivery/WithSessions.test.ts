/**
 * Delivery over the real session service: sessions requested, approved-or-not and revoked by
 * `Sessions`, read by delivery through `DeliveryPorts.sessionsFromRepository` from the same
 * coordination store.
 */
import { randomBytes } from "node:crypto"
import { SystemKeys } from "@aap/key-custody"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import * as CoordinationStore from "../../src/CoordinationStore.js"
import { Delivery } from "../../src/Delivery.js"
import * as Ports from "../../src/delivery/Ports.js"
import * as SessionRepository from "../../src/SessionRepository.js"
import * as Sessions from "../../src/Sessions.js"
import * as H from "./support/harness.js"

describe("delivery with the session service", () => {
  it.scopedLive("request → deliver → revoke → refused; pending is refused; another agent gets NotFound", () =>
    Effect.gen(function* () {
      const repo = SessionRepository.layer.pipe(
        Layer.provide(
          Layer.merge(
            CoordinationStore.layerMemory,
            SystemKeys.layerFromRoot(Redacted.make(new Uint8Array(randomBytes(32))))
          )
        )
      )
      const { env, layer } = H.makeEnv({ sessions: Ports.sessionsFromRepository.pipe(Layer.provide(repo)) })
      yield* Effect.addFinalizer(() => Effect.sync(() => env.sts.restore()))
      yield* Effect.gen(function* () {
        const sessions = yield* Sessions.Sessions
        const delivery = yield* Delivery

        const s = yield* sessions.request(H.codex, { capability: "openrouter-chat" })
        assert.strictEqual(s.status, "active")
        const out = yield* delivery.deliver(H.codex, s.id, {})
        assert.strictEqual(
          out.credential._tag === "bearer-token" && Redacted.value(out.credential.token),
          H.CANARY.bearer
        )

        const theirs = yield* Effect.flip(delivery.deliver(H.claude, s.id, {}))
        assert.strictEqual(theirs._tag, "NotFound")

        yield* sessions.revoke(H.codex, s.id)
        const reads = env.counters.vaultReads
        const revoked = yield* Effect.flip(delivery.deliver(H.codex, s.id, {}))
        assert.deepInclude(revoked, { _tag: "SessionNotActive", status: "revoked" })

        const pending = yield* sessions.request(H.codex, { capability: "ssh-platform-host" })
        assert.strictEqual(pending.status, "pending_approval")
        const notYet = yield* Effect.flip(
          delivery.deliver(H.codex, pending.id, { publicKey: "ssh-ed25519 AAAA" })
        )
        assert.deepInclude(notYet, { _tag: "SessionNotActive", status: "pending_approval" })
        assert.strictEqual(env.counters.vaultReads, reads)
      }).pipe(Effect.provide(Layer.provideMerge(Sessions.layer().pipe(Layer.provide(repo)), layer)))
    })
  )
})
