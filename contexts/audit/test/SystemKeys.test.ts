import * as Crypto from "node:crypto"
import * as Fs from "node:fs/promises"
import * as Path from "node:path"
import { SystemKeys } from "@aap/key-custody"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { AuditHmac, AuditKeys, AuditLog, AuditReader, JsonlSink } from "../src/index.js"
import { input } from "./AuditSinkConformance.js"
import { tempDir } from "./harness.js"

describe("AuditKeys.layerSystemKeys (key-custody)", () => {
  it.scoped(
    "HMACs with the audit-hmac key, signs checkpoints with the audit-checkpoint key, never stores the value",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const canary = "CANARY-ghp_0123456789abcdefABCDEF"
        // layerFromRoot, not layerMemory: layerMemory is Layer.fresh, so provideMerge would build
        // two different roots (one for the adapter, one for the test's own SystemKeys)
        const root = Redacted.make(new Uint8Array(Crypto.randomBytes(32)))
        const keys = AuditKeys.layerSystemKeys.pipe(Layer.provideMerge(SystemKeys.layerFromRoot(root)))
        yield* Effect.gen(function* () {
          const system = yield* SystemKeys.SystemKeys
          const reader = AuditReader.make(
            yield* JsonlSink.make({ dir }).pipe(Effect.map((m) => m.sink)),
            yield* AuditKeys.AuditKeys
          )
          const event = yield* Effect.gen(function* () {
            return yield* (yield* AuditLog.AuditLog).append({
              ...input(1),
              sensitive: { token: Redacted.make(canary) }
            })
          }).pipe(
            Effect.provide(
              AuditLog.layerWith({ instanceId: "sys" }).pipe(Layer.provide(JsonlSink.layer({ dir })))
            )
          )
          assert.strictEqual(event.hmac?.token, yield* system.hmac(SystemKeys.Purpose.AuditHmac, canary))
          assert.strictEqual(event.hmac?.token, yield* AuditHmac.compute(canary))
          const report = yield* reader.verify()
          assert.isTrue(report.ok, JSON.stringify(report.firstBreak))
          assert.isTrue(
            report.streams[0]!.sealed,
            "the final checkpoint verifies with the audit-checkpoint key"
          )
          assert.strictEqual((yield* reader.query({ hmac: event.hmac!.token! })).length, 1)
          const files = yield* Effect.promise(() => Fs.readdir(Path.join(dir, event.stream)))
          for (const file of files) {
            const content = yield* Effect.promise(() =>
              Fs.readFile(Path.join(dir, event.stream, file), "utf8")
            )
            assert.notInclude(content, canary, file)
          }
        }).pipe(Effect.provide(keys))
      })
  )
})
