import * as Crypto from "node:crypto"
import { DynamoDb } from "@aap/local-stack"
import type {
  BatchWriteItemCommandInput,
  BatchWriteItemCommandOutput,
  WriteRequest
} from "@aws-sdk/client-dynamodb"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { AuditKeys, AuditLog, AuditReader, AuditSink, DynamoDbSink } from "../src/index.js"
import { input } from "./AuditSinkConformance.js"

interface Interceptor {
  /** How many items of each BatchWriteItem call to really write; the rest come back unprocessed. */
  keep: (call: number, items: number) => number
  readonly calls: Array<BatchWriteItemCommandInput>
}

const isBatchWrite = (value: unknown): value is BatchWriteItemCommandInput =>
  typeof value === "object" && value !== null && "RequestItems" in value

/** dynalite, with a middleware on the client that can hold back part of every batch write. */
const harness = (interceptor: Interceptor) =>
  Layer.tap(DynamoDb.layerEmbedded({ tablePrefix: `u${Crypto.randomBytes(4).toString("hex")}` }), (context) =>
    Effect.sync(() => {
      const { client } = context.unsafeMap.get(DynamoDb.DynamoDb.key) as DynamoDb.DynamoDbShape
      client.middlewareStack.add(
        (next, ctx) => async (args) => {
          if (ctx.commandName !== "BatchWriteItemCommand" || !isBatchWrite(args.input)) return next(args)
          const input = args.input
          interceptor.calls.push(structuredClone(input))
          const [table, requests] = Object.entries(input.RequestItems ?? {})[0]!
          const keep = interceptor.keep(interceptor.calls.length, requests.length)
          const written: Array<WriteRequest> = requests.slice(0, keep)
          const held: Array<WriteRequest> = requests.slice(keep)
          const result =
            written.length === 0
              ? {
                  output: { UnprocessedItems: {}, $metadata: {} } as BatchWriteItemCommandOutput,
                  response: {}
                }
              : await next({ ...args, input: { ...input, RequestItems: { [table]: written } } })
          const output = result.output as BatchWriteItemCommandOutput
          return {
            ...result,
            output: { ...output, UnprocessedItems: held.length === 0 ? {} : { [table]: held } }
          }
        },
        { step: "initialize", name: "auditTestInterceptor" }
      )
    })
  )

const stack = (interceptor: Interceptor, options: AuditLog.Options = {}) =>
  Layer.mergeAll(
    AuditLog.layerWith({ instanceId: "ddb", appendTimeout: "5 seconds", ...options }),
    AuditReader.layer
  ).pipe(
    Layer.provideMerge(DynamoDbSink.layerWith({ unprocessedAttempts: 4 })),
    Layer.provideMerge(AuditKeys.layerEphemeral),
    Layer.provideMerge(harness(interceptor))
  )

describe("DynamoDbSink", () => {
  it.live("writes one BatchWriteItem per batch with the documented keys", () => {
    const interceptor: Interceptor = { keep: (_, n) => n, calls: [] }
    return Effect.gen(function* () {
      const log = yield* AuditLog.AuditLog
      const { tables } = yield* DynamoDb.DynamoDb
      const event = yield* log.append(input(1))
      assert.strictEqual(interceptor.calls.length, 1)
      const requests = interceptor.calls[0]!.RequestItems![tables.audit]!
      assert.strictEqual(tables.audit.endsWith("-audit"), true)
      assert.deepStrictEqual(Object.keys(requests[0]!.PutRequest!.Item!).sort(), ["PK", "SK", "line"])
      assert.deepStrictEqual(requests[0]!.PutRequest!.Item!.PK, { S: `stream#${event.stream}` })
      assert.deepStrictEqual(requests[0]!.PutRequest!.Item!.SK, { S: "0000000000000001" })
      assert.isTrue(requests[0]!.PutRequest!.Item!.line!.S!.startsWith(`{"hash":"${event.hash}",`))
      const many = yield* Effect.forEach(
        Array.from({ length: 60 }, (_, i) => i + 2),
        (i) => log.append(input(i)),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(many.length, 60)
      for (const call of interceptor.calls) assert.isAtMost(call.RequestItems![tables.audit]!.length, 25)
    }).pipe(Effect.provide(stack(interceptor)))
  })

  it.live("retries UnprocessedItems until every event is written", () => {
    // every first attempt writes half of its batch and returns the rest as unprocessed
    let attempt = 0
    const interceptor: Interceptor = {
      keep: (_, n) => (attempt++ % 2 === 0 ? Math.floor(n / 2) : n),
      calls: []
    }
    return Effect.gen(function* () {
      const log = yield* AuditLog.AuditLog
      const reader = yield* AuditReader.AuditReader
      const events = yield* Effect.forEach(
        Array.from({ length: 40 }, (_, i) => i + 1),
        (i) => log.append(input(i)),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(events.length, 40)
      const report = yield* reader.verify()
      assert.isTrue(report.ok, JSON.stringify(report.firstBreak))
      assert.strictEqual(report.streams[0]!.lastSeq, 40)
      const held = interceptor.calls.filter((_, i) => i % 2 === 0).length
      assert.isAbove(held, 0)
    }).pipe(Effect.provide(stack(interceptor)))
  })

  it.live("fails the append when items stay unprocessed, then continues in a new stream", () => {
    let failing = true
    const interceptor: Interceptor = { keep: (_, n) => (failing ? Math.floor(n / 2) : n), calls: [] }
    return Effect.gen(function* () {
      const log = yield* AuditLog.AuditLog
      const reader = yield* AuditReader.AuditReader
      const first = yield* log.stream
      const failed = yield* Effect.flip(log.append(input(1)))
      assert.strictEqual(failed._tag, "AuditUnavailable")
      failing = false
      const next = yield* log.append(input(5))
      assert.notStrictEqual(next.stream, first)
      assert.strictEqual(next.seq, 1)
      const report = yield* reader.verify()
      assert.isTrue(report.ok, JSON.stringify(report.firstBreak))
      assert.strictEqual(report.streams.length, 2, "the failed batch abandoned its stream")
      assert.strictEqual(
        report.streams.find((s) => s.stream === first)?.lastSeq,
        0,
        "nothing was acknowledged"
      )
    }).pipe(Effect.provide(stack(interceptor)))
  })

  it.live("an unreachable table fails appends with AuditUnavailable within the timeout", () =>
    Effect.gen(function* () {
      const log = yield* AuditLog.AuditLog
      const { client, tables } = yield* DynamoDb.DynamoDb
      const { DeleteTableCommand } = yield* Effect.promise(() => import("@aws-sdk/client-dynamodb"))
      yield* Effect.promise(() => client.send(new DeleteTableCommand({ TableName: tables.audit })))
      const started = Date.now()
      const error = yield* Effect.flip(log.append(input(1)))
      assert.strictEqual(error._tag, "AuditUnavailable")
      assert.isBelow(Date.now() - started, 5_000)
      const sink = yield* AuditSink.AuditSink
      assert.strictEqual(sink.kind, "dynamodb")
    }).pipe(Effect.provide(stack({ keep: (_, n) => n, calls: [] }, { appendTimeout: "2 seconds" })))
  )
})
