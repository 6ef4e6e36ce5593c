import * as Crypto from "node:crypto"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import { DynamoDb } from "@aap/local-stack"
import { type AttributeValue, BatchWriteItemCommand, QueryCommand } from "@aws-sdk/client-dynamodb"
import { Context, Effect, Layer, Stream } from "effect"
import { AuditSink, DynamoDbSink, JsonlSink } from "../src/index.js"

/** Direct access to a sink's storage, as an attacker with write access would have. */
export interface SinkTamperShape {
  readonly lines: (stream: string) => Effect.Effect<ReadonlyArray<string>>
  readonly setLines: (stream: string, lines: ReadonlyArray<string>) => Effect.Effect<void>
  readonly checkpoints: (stream: string) => Effect.Effect<ReadonlyArray<string>>
  readonly setCheckpoints: (stream: string, lines: ReadonlyArray<string>) => Effect.Effect<void>
}

export class SinkTamper extends Context.Tag("test/SinkTamper")<SinkTamper, SinkTamperShape>() {}

export type Harness = () => Layer.Layer<AuditSink.AuditSink | SinkTamper, unknown>

export const memoryHarness: Harness = () =>
  Layer.effect(
    SinkTamper,
    Effect.gen(function* () {
      const control = yield* AuditSink.MemorySink
      const sink = yield* AuditSink.AuditSink
      return SinkTamper.of({
        lines: control.lines,
        setLines: control.setLines,
        checkpoints: (stream) => Effect.orDie(sink.checkpoints(stream)),
        setCheckpoints: control.setCheckpoints
      })
    })
  ).pipe(Layer.provideMerge(AuditSink.layerMemory))

/** A fresh temporary directory, removed when the scope closes. */
export const tempDir = Effect.acquireRelease(
  Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "aap-audit-"))),
  (dir) => Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
)

const readLines = async (path: string): Promise<Array<string>> => {
  try {
    const lines = (await Fs.readFile(path, "utf8")).split("\n")
    lines.pop()
    return lines
  } catch {
    return []
  }
}

export const jsonlTamper = (dir: string): SinkTamperShape => ({
  lines: (stream) =>
    Effect.promise(async () => {
      const names = (await Fs.readdir(Path.join(dir, stream))).filter((n) => /^\d{16}\.jsonl$/.test(n)).sort()
      const out: Array<string> = []
      for (const name of names) out.push(...(await readLines(Path.join(dir, stream, name))))
      return out
    }),
  setLines: (stream, lines) =>
    Effect.promise(async () => {
      const names = (await Fs.readdir(Path.join(dir, stream))).filter((n) => /^\d{16}\.jsonl$/.test(n))
      for (const name of names) await Fs.rm(Path.join(dir, stream, name))
      await Fs.writeFile(
        Path.join(dir, stream, "0000000000000001.jsonl"),
        lines.map((l) => l + "\n").join(""),
        { mode: 0o600 }
      )
    }),
  checkpoints: (stream) => Effect.promise(() => readLines(Path.join(dir, stream, "checkpoints.jsonl"))),
  setCheckpoints: (stream, lines) =>
    Effect.promise(() =>
      Fs.writeFile(Path.join(dir, stream, "checkpoints.jsonl"), lines.map((l) => l + "\n").join(""), {
        mode: 0o600
      })
    )
})

export const jsonlHarness =
  (options: { readonly maxSegmentBytes?: number } = {}): Harness =>
  () =>
    Layer.unwrapScoped(
      Effect.map(tempDir, (dir) =>
        Layer.merge(
          JsonlSink.layer({ dir, ...options }),
          Layer.succeed(SinkTamper, SinkTamper.of(jsonlTamper(dir)))
        )
      )
    )

const S = (value: string): AttributeValue => ({ S: value })

/** Rewrite every item under one partition key of the audit table. */
const rewritePartition = (pk: string, items: ReadonlyArray<Record<string, AttributeValue>>) =>
  Effect.gen(function* () {
    const { client, tables } = yield* DynamoDb.DynamoDb
    const existing = yield* Effect.promise(() =>
      client.send(
        new QueryCommand({
          TableName: tables.audit,
          KeyConditionExpression: "PK = :pk",
          ExpressionAttributeValues: { ":pk": S(pk) }
        })
      )
    )
    const deletes = (existing.Items ?? []).map((item) => ({
      DeleteRequest: { Key: { PK: item.PK!, SK: item.SK! } }
    }))
    const puts = items.map((item) => ({ PutRequest: { Item: item } }))
    // deletes first, then puts (a put may reuse a deleted key)
    for (const requests of [deletes, puts]) {
      for (let i = 0; i < requests.length; i += 25) {
        yield* Effect.promise(() =>
          client.send(
            new BatchWriteItemCommand({ RequestItems: { [tables.audit]: requests.slice(i, i + 25) } })
          )
        )
      }
    }
  })

export const dynamoTamper = Layer.effect(
  SinkTamper,
  Effect.gen(function* () {
    const dynamo = yield* DynamoDb.DynamoDb
    const sink = yield* AuditSink.AuditSink
    const provide = Effect.provideService(DynamoDb.DynamoDb, dynamo)
    return SinkTamper.of({
      lines: (stream) =>
        Effect.orDie(Effect.map(Stream.runCollect(sink.scan(stream, 1)), (c) => [...c].map((r) => r.line))),
      setLines: (stream, lines) =>
        rewritePartition(
          `stream#${stream}`,
          lines.map((line, i) => ({
            PK: S(`stream#${stream}`),
            SK: S(String(i + 1).padStart(16, "0")),
            line: S(line)
          }))
        ).pipe(provide),
      checkpoints: (stream) => Effect.orDie(sink.checkpoints(stream)),
      setCheckpoints: (stream, lines) =>
        rewritePartition(
          `checkpoint#${stream}`,
          lines.map((line, i) => ({
            PK: S(`checkpoint#${stream}`),
            SK: S(`${i}`.padStart(16, "0")),
            line: S(line)
          }))
        ).pipe(provide)
    })
  })
)

export const dynamoHarness: Harness = () =>
  dynamoTamper.pipe(
    Layer.provideMerge(DynamoDbSink.layer),
    Layer.provide(DynamoDb.layerEmbedded({ tablePrefix: `t${Crypto.randomBytes(4).toString("hex")}` }))
  )
