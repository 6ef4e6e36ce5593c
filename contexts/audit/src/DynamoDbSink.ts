/**
 * The DynamoDB sink (DESIGN §7, §8), in the audit table `<prefix>-audit`:
 *
 * | item | PK | SK | attributes |
 * |---|---|---|---|
 * | event | `stream#<id>` | seq, 16 digits zero-padded | `line` (the stored line, ADR 0031) |
 * | stream registry | `streams` | `<id>` | `createdAt` |
 * | checkpoint | `checkpoint#<id>` | `<seq, 16 digits>#<random>` | `line` |
 *
 * A group-committed batch is one `BatchWriteItem` (so at most 25 events); `UnprocessedItems`
 * are retried with backoff until written or the attempts run out. Opening a stream is a
 * conditional put of its registry item, so a stream id can never be opened twice. The same
 * code runs against dynalite (embedded) and AWS DynamoDB.
 *
 * @since 0.1.0
 */
import * as Crypto from "node:crypto"
import { DynamoDb, type StoreError } from "@aap/local-stack"
import {
  type AttributeValue,
  BatchWriteItemCommand,
  PutItemCommand,
  QueryCommand,
  type WriteRequest
} from "@aws-sdk/client-dynamodb"
import { Chunk, Duration, Effect, Layer, Option, Stream } from "effect"
import { AuditSink, AuditSinkError, type AuditSinkShape, type StoredLine } from "./AuditSink.js"
import { padSeq } from "./internal/record.js"

/**
 * The audit table: string keys `PK` and `SK`, no index.
 *
 * @since 0.1.0
 * @category constants
 */
export const tableSpec: DynamoDb.TableSpec = { table: "audit", partitionKey: "PK", sortKey: "SK" }

/**
 * Most events in one batch: DynamoDB's `BatchWriteItem` limit.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_BATCH = 25

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Attempts for a batch whose items come back unprocessed (default 8, backoff from 20 ms). */
  readonly unprocessedAttempts?: number | undefined
}

const toSinkError = (operation: string) => (error: StoreError.StoreFailure) =>
  new AuditSinkError({
    operation,
    message: error._tag === "StoreUnavailable" ? error.reason : error._tag
  })

const S = (value: string): AttributeValue => ({ S: value })

const lineOf = (item: Record<string, AttributeValue>): string => item.line?.S ?? ""

/**
 * Build the sink over the `DynamoDb` service (the table must exist: see `layer`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<AuditSinkShape, never, DynamoDb.DynamoDb> =>
  Effect.gen(function* () {
    const dynamo = yield* DynamoDb.DynamoDb
    const table = dynamo.tables.audit
    const provide = Effect.provideService(DynamoDb.DynamoDb, dynamo)
    const attempts = Math.max(1, options.unprocessedAttempts ?? 8)
    const open = new Set<string>()

    const query = (pk: string, from: string | undefined, operation: string) =>
      Stream.paginateChunkEffect(undefined as Record<string, AttributeValue> | undefined, (start) =>
        DynamoDb.use(operation, (client, signal) =>
          client.send(
            new QueryCommand({
              TableName: table,
              KeyConditionExpression: from === undefined ? "PK = :pk" : "PK = :pk AND SK >= :from",
              ExpressionAttributeValues:
                from === undefined ? { ":pk": S(pk) } : { ":pk": S(pk), ":from": S(from) },
              ...(start === undefined ? {} : { ExclusiveStartKey: start }),
              Limit: 1000
            }),
            { abortSignal: signal }
          )
        ).pipe(
          provide,
          Effect.mapError(toSinkError(operation)),
          Effect.map(
            (out) =>
              [
                Chunk.unsafeFromArray(out.Items ?? []),
                out.LastEvaluatedKey === undefined ? Option.none() : Option.some(out.LastEvaluatedKey)
              ] as const
          )
        )
      )

    const batchWrite = (operation: string, requests: ReadonlyArray<WriteRequest>) =>
      Effect.gen(function* () {
        let remaining: Array<WriteRequest> = [...requests]
        for (let attempt = 0; remaining.length > 0; attempt++) {
          if (attempt >= attempts) {
            return yield* new AuditSinkError({ operation, message: "UnprocessedItems" })
          }
          if (attempt > 0) yield* Effect.sleep(Duration.millis(Math.min(1000, 20 * 2 ** (attempt - 1))))
          const batch = remaining
          const out = yield* DynamoDb.use(operation, (client, signal) =>
            client.send(new BatchWriteItemCommand({ RequestItems: { [table]: batch } }), {
              abortSignal: signal
            })
          ).pipe(provide, Effect.mapError(toSinkError(operation)))
          remaining = [...(out.UnprocessedItems?.[table] ?? [])]
        }
      })

    const sink: AuditSinkShape = {
      kind: "dynamodb",
      maxBatch: MAX_BATCH,
      open: (stream) =>
        DynamoDb.use("open", (client, signal) =>
          client.send(
            new PutItemCommand({
              TableName: table,
              Item: { PK: S("streams"), SK: S(stream), createdAt: S(new Date().toISOString()) },
              ConditionExpression: "attribute_not_exists(PK)"
            }),
            { abortSignal: signal }
          )
        ).pipe(
          provide,
          Effect.mapError(toSinkError("open")),
          Effect.tap(() => Effect.sync(() => open.add(stream)))
        ),
      write: (stream, records) =>
        Effect.suspend(() => {
          if (!open.has(stream)) {
            return Effect.fail(new AuditSinkError({ operation: "write", message: "stream is not open" }))
          }
          if (records.length === 0) return Effect.void
          if (records.length > MAX_BATCH) {
            return Effect.fail(new AuditSinkError({ operation: "write", message: "batch too large" }))
          }
          return batchWrite(
            "write",
            records.map((r) => ({
              PutRequest: { Item: { PK: S(`stream#${stream}`), SK: S(padSeq(r.seq)), line: S(r.line) } }
            }))
          )
        }),
      close: (stream) =>
        Effect.sync(() => {
          open.delete(stream)
        }),
      streams: query("streams", undefined, "streams").pipe(
        Stream.map((item) => item.SK?.S ?? ""),
        Stream.runCollect,
        Effect.map((chunk) => [...chunk].sort())
      ),
      scan: (stream, from) =>
        query(`stream#${stream}`, padSeq(Math.max(1, from)), "scan").pipe(
          Stream.map((item): StoredLine => ({ position: Number(item.SK?.S ?? "0"), line: lineOf(item) }))
        ),
      bytes: (stream) =>
        query(`stream#${stream}`, undefined, "bytes").pipe(
          Stream.chunks,
          Stream.map((items) => {
            let text = ""
            for (const item of items) text += lineOf(item) + "\n"
            return new Uint8Array(Buffer.from(text, "utf8"))
          })
        ),
      writeCheckpoint: (stream, seq, line) =>
        DynamoDb.use("writeCheckpoint", (client, signal) =>
          client.send(
            new PutItemCommand({
              TableName: table,
              Item: {
                PK: S(`checkpoint#${stream}`),
                SK: S(`${padSeq(seq)}#${Crypto.randomBytes(8).toString("hex")}`),
                line: S(line)
              }
            }),
            { abortSignal: signal }
          )
        ).pipe(provide, Effect.mapError(toSinkError("writeCheckpoint")), Effect.asVoid),
      checkpoints: (stream) =>
        query(`checkpoint#${stream}`, undefined, "checkpoints").pipe(
          Stream.map(lineOf),
          Stream.runCollect,
          Effect.map((chunk) => [...chunk])
        )
    }
    return sink
  })

/**
 * The DynamoDB sink; creates the audit table if it is missing (idempotent).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWith = (options: Options): Layer.Layer<AuditSink, AuditSinkError, DynamoDb.DynamoDb> =>
  Layer.effect(
    AuditSink,
    Effect.gen(function* () {
      yield* DynamoDb.ensureTable(tableSpec).pipe(Effect.mapError(toSinkError("ensureTable")))
      return yield* make(options)
    })
  )

/**
 * `layerWith` with the defaults.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<AuditSink, AuditSinkError, DynamoDb.DynamoDb> = layerWith({})
