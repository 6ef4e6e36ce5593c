import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { AuditEvent, AuditKeys, AuditLog, AuditReader, AuditSink, JsonlSink } from "@aap/audit"
import { Engine } from "@aap/local-stack"
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  NotFound,
  PutObjectCommand,
  S3Client
} from "@aws-sdk/client-s3"
import { assert, describe, it } from "@effect/vitest"
import { mockClient } from "aws-sdk-client-mock"
import { Effect, Layer, Option, Redacted, Schema } from "effect"
import * as AuditShipping from "../src/AuditShipping.js"
import * as Progress from "../src/Progress.js"
import * as WorkerMetrics from "../src/WorkerMetrics.js"

const BUCKET = "aap-audit"

/** Audit keys that stay the same across the test's layer builds (like the system keys do). */
const stableKeys = Layer.succeed(
  AuditKeys.AuditKeys,
  AuditKeys.make({
    hmacKey: Redacted.make(new Uint8Array(Crypto.randomBytes(32))),
    signingSeed: Redacted.make(new Uint8Array(Crypto.randomBytes(32))),
    keyId: "test-checkpoint-key"
  })
)

/** A JSONL audit log in a temp dir: the writer, the reader and the sink. */
const jsonlAudit = (dir: string) =>
  Layer.mergeAll(AuditLog.layerWith({ instanceId: "broker" }), AuditReader.layer).pipe(
    Layer.provideMerge(JsonlSink.layer({ dir })),
    Layer.provideMerge(stableKeys)
  )

const append = (n: number) =>
  Effect.flatMap(AuditLog.AuditLog, (log) =>
    Effect.forEach(
      Array.from({ length: n }, (_, i) => i),
      (i) =>
        log.append({
          actor: { type: "agent", id: "codex" },
          action: "session.requested",
          outcome: "success",
          details: { i }
        }),
      { discard: true }
    )
  )

const listKeys = (client: S3Client) =>
  Effect.promise(async () => {
    const out = await client.send(new ListObjectsV2Command({ Bucket: BUCKET }))
    return (out.Contents ?? []).map((o) => o.Key ?? "").sort()
  })

const getText = (client: S3Client, key: string) =>
  Effect.promise(async () => {
    const out = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))
    return (await out.Body?.transformToString()) ?? ""
  })

const pad = (n: number) => String(n).padStart(16, "0")

describe("AuditShipping against s3rver", () => {
  it.live(
    "checkpoints the head, ships checkpointed records and checkpoints, resumes without duplicates",
    () =>
      Effect.gen(function* () {
        const root = Fs.mkdtempSync(Path.join(Os.tmpdir(), "aap-worker-ship-"))
        const s3 = yield* Engine.s3({ dir: Path.join(root, "s3"), buckets: [BUCKET] })
        const bucket = AuditShipping.layerBucket({
          bucket: BUCKET,
          client: AuditShipping.s3Config({
            endpoint: s3.endpoint,
            credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" }
          })
        })
        const client = new S3Client(Engine.s3ClientConfig(s3.endpoint))
        yield* Effect.addFinalizer(() => Effect.sync(() => client.destroy()))
        yield* Effect.gen(function* () {
          const stream = yield* Effect.flatMap(AuditLog.AuditLog, (l) => l.stream)
          yield* append(25)
          const first = yield* AuditShipping.run({ maxRecordsPerObject: 10 })
          assert.deepStrictEqual(first, [
            { stream, checkpointed: Option.some(25), shippedThrough: 25, objects: 4 }
          ])
          const keys = yield* listKeys(client)
          const base = `audit/${stream}/`
          assert.deepStrictEqual(keys.slice(0, 3), [
            `${base}checkpoints/${pad(25)}-${keys[0]?.slice(-21, -5)}.json`,
            `${base}records/${pad(1)}-${pad(10)}.jsonl`,
            `${base}records/${pad(11)}-${pad(20)}.jsonl`
          ])
          assert.strictEqual(keys[3], `${base}records/${pad(21)}-${pad(25)}.jsonl`)
          // The shipped records are the stored lines byte for byte.
          const lines: Array<string> = []
          for (const key of keys.slice(1))
            lines.push(...(yield* getText(client, key)).split("\n").filter((l) => l !== ""))
          assert.strictEqual(lines.length, 25)
          const events = lines.map((l) => Schema.decodeUnknownSync(AuditEvent.AuditEvent)(JSON.parse(l)))
          assert.deepStrictEqual(
            events.map((e) => e.seq),
            Array.from({ length: 25 }, (_, i) => i + 1)
          )
          // The shipped checkpoint verifies against the chain with the reader.
          const checkpoint = Schema.decodeUnknownSync(AuditEvent.Checkpoint)(
            JSON.parse(yield* getText(client, keys[0] ?? ""))
          )
          assert.strictEqual(checkpoint.seq, 25)
          assert.strictEqual(checkpoint.hash, events[24]?.hash)
          const report = yield* Effect.flatMap(AuditReader.AuditReader, (r) =>
            r.verify({ checkpoints: [checkpoint] })
          )
          assert.isTrue(report.ok)

          // Nothing new: nothing signed, nothing uploaded.
          const idle = yield* AuditShipping.run({ maxRecordsPerObject: 10 })
          assert.deepStrictEqual(idle, [
            { stream, checkpointed: Option.none(), shippedThrough: 25, objects: 0 }
          ])

          // More events: a new checkpoint and the next range.
          yield* append(5)
          const more = yield* AuditShipping.run({ maxRecordsPerObject: 10 })
          assert.deepStrictEqual(more, [
            { stream, checkpointed: Option.some(30), shippedThrough: 30, objects: 2 }
          ])
          assert.strictEqual((yield* listKeys(client)).length, 6)
        }).pipe(
          Effect.provide(
            Layer.mergeAll(
              jsonlAudit(Path.join(root, "audit")),
              bucket,
              Progress.layerMemory,
              WorkerMetrics.layer
            )
          )
        )
        // A run that lost its progress (killed between upload and marker) re-checks and skips.
        yield* Effect.gen(function* () {
          const results = yield* AuditShipping.run({ maxRecordsPerObject: 10 })
          const old = results.find((r) => r.shippedThrough === 30)
          assert.isDefined(old)
          // Only the writer's final checkpoint (written when it closed) is new.
          assert.strictEqual(old?.objects, 1)
          assert.strictEqual(
            (yield* listKeys(client)).filter((k) => k.includes(old?.stream ?? "?")).length,
            7
          )
        }).pipe(
          Effect.provide(
            Layer.mergeAll(
              jsonlAudit(Path.join(root, "audit")),
              bucket,
              Progress.layerMemory,
              WorkerMetrics.layer
            )
          )
        )
        Fs.rmSync(root, { recursive: true, force: true })
      }).pipe(Effect.scoped)
  )
})

describe("AuditShipping at the S3 SDK boundary", () => {
  it.live("every PutObject carries Object Lock retention, Content-MD5 and the exact key and body", () =>
    Effect.gen(function* () {
      const client = new S3Client(
        AuditShipping.s3Config({ credentials: { accessKeyId: "x", secretAccessKey: "y" } })
      )
      const mock = mockClient(client)
      mock.on(HeadObjectCommand).rejects(new NotFound({ message: "not found", $metadata: {} }))
      mock.on(PutObjectCommand).resolves({})
      mock.on(ListObjectsV2Command).resolves({ Contents: [], IsTruncated: false })
      const bucket = Layer.succeed(AuditShipping.AuditBucket, {
        client,
        bucket: BUCKET,
        prefix: "audit/",
        lockMode: "GOVERNANCE",
        retentionDays: 30
      })
      const audit = Layer.mergeAll(AuditLog.layerWith({ instanceId: "broker" }), AuditReader.layer).pipe(
        Layer.provideMerge(AuditSink.layerMemory),
        Layer.provideMerge(AuditKeys.layerEphemeral)
      )
      yield* Effect.gen(function* () {
        const stream = yield* Effect.flatMap(AuditLog.AuditLog, (l) => l.stream)
        yield* append(3)
        const before = Date.now()
        yield* AuditShipping.run()
        const after = Date.now()
        const puts = mock.commandCalls(PutObjectCommand).map((c) => c.args[0].input)
        assert.strictEqual(puts.length, 2)
        const lines = yield* Effect.flatMap(AuditSink.MemorySink, (m) => m.lines(stream))
        const body = `${lines.join("\n")}\n`
        const records = puts.find((p) => String(p.Key).includes("/records/"))
        const { ObjectLockRetainUntilDate, ...rest } = records ?? {}
        assert.deepStrictEqual(rest, {
          Bucket: BUCKET,
          Key: `audit/${stream}/records/${pad(1)}-${pad(3)}.jsonl`,
          Body: body,
          ContentType: "application/x-ndjson",
          ContentMD5: Crypto.createHash("md5").update(body).digest("base64"),
          ObjectLockMode: "GOVERNANCE"
        })
        const until = ObjectLockRetainUntilDate instanceof Date ? ObjectLockRetainUntilDate.getTime() : 0
        assert.isAtLeast(until, before + 30 * 86_400_000)
        assert.isAtMost(until, after + 30 * 86_400_000)
        const cp = puts.find((p) => String(p.Key).includes("/checkpoints/"))
        assert.strictEqual(cp?.ObjectLockMode, "GOVERNANCE")
        assert.strictEqual(cp?.ContentType, "application/json")
        assert.strictEqual(cp?.ContentMD5, Crypto.createHash("md5").update(String(cp?.Body)).digest("base64"))
        assert.deepStrictEqual(mock.commandCalls(ListObjectsV2Command)[0]?.args[0].input, {
          Bucket: BUCKET,
          Prefix: `audit/${stream}/records/`,
          StartAfter: `audit/${stream}/records/${pad(0)}`
        })
        // Each object was looked up before it was put.
        assert.deepStrictEqual(
          mock.commandCalls(HeadObjectCommand).map((c) => c.args[0].input.Key),
          puts.map((p) => p.Key)
        )
      }).pipe(Effect.provide(Layer.mergeAll(audit, bucket, Progress.layerMemory, WorkerMetrics.layer)))
    })
  )

  it.live("a broken stream is neither signed nor shipped", () =>
    Effect.gen(function* () {
      const client = new S3Client(
        AuditShipping.s3Config({ credentials: { accessKeyId: "x", secretAccessKey: "y" } })
      )
      const mock = mockClient(client)
      const bucket = Layer.succeed(AuditShipping.AuditBucket, {
        client,
        bucket: BUCKET,
        prefix: "",
        lockMode: "COMPLIANCE",
        retentionDays: 1
      })
      const audit = Layer.mergeAll(AuditLog.layerWith({ instanceId: "broker" }), AuditReader.layer).pipe(
        Layer.provideMerge(AuditSink.layerMemory),
        Layer.provideMerge(AuditKeys.layerEphemeral)
      )
      yield* Effect.gen(function* () {
        const stream = yield* Effect.flatMap(AuditLog.AuditLog, (l) => l.stream)
        yield* append(3)
        const control = yield* AuditSink.MemorySink
        const lines = [...(yield* control.lines(stream))]
        lines[1] = (lines[1] ?? "").replace('"i":1', '"i":9')
        yield* control.setLines(stream, lines)
        const results = yield* AuditShipping.run()
        assert.deepStrictEqual(results, [
          { stream, checkpointed: Option.none(), shippedThrough: 0, objects: 0, skipped: "broken" }
        ])
        assert.strictEqual(mock.calls().length, 0)
      }).pipe(Effect.provide(Layer.mergeAll(audit, bucket, Progress.layerMemory, WorkerMetrics.layer)))
    })
  )
})
