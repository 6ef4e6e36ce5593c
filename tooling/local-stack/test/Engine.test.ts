import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { Engine } from "../src/index.js"

describe("Engine", () => {
  it.effect("dynalite listens on an ephemeral loopback port and stops with its scope", () =>
    Effect.gen(function* () {
      const engine = yield* Effect.scoped(
        Effect.gen(function* () {
          const engine = yield* Engine.dynamo()
          assert.match(engine.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/)
          assert.isTrue(Option.isNone(engine.dir))
          const response = yield* Effect.promise(() => fetch(engine.endpoint, { method: "POST" }))
          assert.strictEqual(response.status, 400)
          return engine
        })
      )
      const after = yield* Effect.promise(() =>
        fetch(engine.endpoint, { method: "POST" }).then(
          () => "open",
          () => "closed"
        )
      )
      assert.strictEqual(after, "closed")
    })
  )

  it.effect("dynalite on disk can be stopped and started again on the same directory", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "aap-engine-"))
      for (let round = 0; round < 3; round++) {
        yield* Effect.scoped(Engine.dynamo({ dir: join(dir, "data") }))
      }
      rmSync(dir, { recursive: true, force: true })
    })
  )

  it.effect("an unusable directory is an EngineError", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "aap-engine-"))
      writeFileSync(join(dir, "file"), "")
      const error = yield* Effect.flip(Effect.scoped(Engine.dynamo({ dir: join(dir, "file", "data") })))
      assert.strictEqual(error._tag, "EngineError")
      assert.include(error.message, "ENOTDIR")
      rmSync(dir, { recursive: true, force: true })
    })
  )

  it.effect("s3rver stores objects byte for byte with the documented client settings", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "aap-s3-"))
      const engine = yield* Engine.s3({ dir, buckets: ["audit"] })
      const client = yield* Effect.acquireRelease(
        Effect.sync(() => new S3Client(Engine.s3ClientConfig(engine.endpoint))),
        (client) => Effect.sync(() => client.destroy())
      )
      const body = new Uint8Array(70_000).map((_, i) => (i * 31) % 251)
      yield* Effect.promise(() =>
        client.send(new PutObjectCommand({ Bucket: "audit", Key: "segments/0001", Body: body }))
      )
      const read = yield* Effect.promise(() =>
        client
          .send(new GetObjectCommand({ Bucket: "audit", Key: "segments/0001" }))
          .then((out) => out.Body?.transformToByteArray())
      )
      assert.deepStrictEqual(read, body)
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    }).pipe(Effect.scoped)
  )
})
