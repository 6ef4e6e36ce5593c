/**
 * A canary secret delivered through every backing appears in no log line (Effect logger output
 * captured at level All) and in no audit record (the raw lines of the sink) — while it does
 * appear in the delivered credential, so the check can fail.
 */

import { AuditSink } from "@aap/audit"
import { AssumeRoleWithWebIdentityCommand } from "@aws-sdk/client-sts"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted, TestClock } from "effect"
import { Delivery } from "../../src/Delivery.js"
import * as FakeOpenRouter from "./support/fakeOpenRouter.js"
import * as H from "./support/harness.js"
import * as OpenSsh from "./support/openssh.js"

describe("canary secrets", () => {
  it.scoped("never reach a log line or an audit record, through every backing and failure path", () =>
    Effect.gen(function* () {
      const fake = yield* FakeOpenRouter.start(H.CANARY.management)
      const dir = yield* OpenSsh.tempDir
      const agentKey = yield* OpenSsh.keygen(dir, "agent")
      yield* TestClock.setTime(H.T0)
      const { env, layer } = H.makeEnv({ provisioner: H.openRouterProvisioner(fake.baseUrl) })
      yield* Effect.addFinalizer(() => Effect.sync(() => env.sts.restore()))
      const delivered: Array<string> = []
      yield* Effect.gen(function* () {
        const d = yield* Delivery
        const take = (id: string, publicKey?: string) =>
          d.deliver(H.codex, id, publicKey === undefined ? {} : { publicKey }).pipe(
            Effect.tap((out) =>
              Effect.sync(() => {
                for (const v of Object.values(out.env)) delivered.push(Redacted.value(v))
                const c = out.credential
                if (c._tag === "bearer-token") delivered.push(Redacted.value(c.token))
                if (c._tag === "aws-sts")
                  delivered.push(Redacted.value(c.secretAccessKey), Redacted.value(c.sessionToken))
              })
            ),
            // Errors are logged by the caller too (as the broker would), so they are part of the check.
            Effect.tapError((e) => Effect.logError("delivery failed", e)),
            Effect.either
          )
        for (const capability of ["openrouter-chat", "openrouter-metered", "memory-s3", "gh-pr"]) {
          const s = yield* env.session(H.codex, capability, 1800)
          yield* take(s.id)
        }
        const ssh = yield* env.session(H.codex, "ssh-platform-host", 600)
        yield* take(ssh.id, agentKey.publicKey)
        // Failure paths: STS refuses; the audit sink is down (the provisioned key is revoked).
        env.sts.on(AssumeRoleWithWebIdentityCommand).rejects(
          Object.assign(new Error(`bad token ${H.CANARY.stsSecret}`), {
            name: "InvalidIdentityTokenException"
          })
        )
        const refused = yield* env.session(H.codex, "memory-s3", 1800)
        yield* take(refused.id)
        yield* AuditSink.MemorySink.pipe(Effect.flatMap((s) => s.setMode("fail")))
        for (const capability of ["openrouter-chat", "openrouter-metered", "gh-pr"]) {
          const s = yield* env.session(H.codex, capability, 1800)
          yield* take(s.id)
        }
        yield* AuditSink.MemorySink.pipe(Effect.flatMap((s) => s.setMode("ok")))
        const lines = yield* H.auditLines

        const provisionedKeys =
          fake.requests.length > 0 ? [...delivered.filter((v) => v.startsWith("sk-or-v1-"))] : []
        const webIdentityTokens = env.sts
          .commandCalls(AssumeRoleWithWebIdentityCommand)
          .map((c) => c.args[0].input.WebIdentityToken ?? "")
        const caBody = Redacted.value(H.caKey).split("\n")[1] ?? ""
        const canaries = [
          ...Object.values(H.CANARY).filter((c) => c !== H.CANARY.bearerOtherWallet),
          ...provisionedKeys,
          ...webIdentityTokens,
          caBody
        ]
        // The check can fail: the secrets were really delivered, and the logs and audit are non-trivial.
        for (const c of [H.CANARY.bearer, H.CANARY.github, H.CANARY.stsSecret, H.CANARY.stsToken]) {
          assert.include(delivered, c)
        }
        assert.isAtLeast(provisionedKeys.length, 1)
        assert.isAtLeast(webIdentityTokens.length, 2)
        assert.isTrue(env.logs.some((l) => l.includes("credential issued")))
        assert.isTrue(env.logs.some((l) => l.includes("delivery failed")))
        assert.strictEqual(lines.length, 6) // five issued, one refused by STS; none while the sink was down

        for (const canary of canaries) {
          assert.isAbove(canary.length, 10)
          for (const line of env.logs) assert.notInclude(line, canary, "a secret reached a log line")
          for (const line of lines) assert.notInclude(line, canary, "a secret reached an audit record")
        }
      }).pipe(Effect.provide(layer))
    })
  )
})
