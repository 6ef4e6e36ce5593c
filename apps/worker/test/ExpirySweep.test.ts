import { SessionRepository } from "@aap/agent-coordination"
import { AuditReader } from "@aap/audit"
import { DynamoDb } from "@aap/local-stack"
import { type AttributeValue, BatchWriteItemCommand, GetItemCommand } from "@aws-sdk/client-dynamodb"
import { assert, describe, it } from "@effect/vitest"
import { DateTime, Effect, Option } from "effect"
import * as ExpirySweep from "../src/ExpirySweep.js"
import { WorkerMetrics } from "../src/WorkerMetrics.js"
import {
  activeSession,
  coordination,
  countReads,
  freshTables,
  memoryKeys,
  sessionId
} from "./support/stack.js"

/**
 * Total sessions in the large-table case. Seeding runs at about 600 items/s on dynalite on this
 * 2-core machine, so the test uses 10,000 (~20 s); `pnpm bench` runs 100,000
 * (AAP_WORKER_SWEEP_TOTAL overrides).
 */
const TOTAL = Number(process.env.AAP_WORKER_SWEEP_TOTAL ?? 10_000)
const DUE = 100

const engine = DynamoDb.layerEmbedded()

/**
 * Writes `count` copies of a stored session item that are NOT due (deadline a day ahead), with
 * their own ids and index keys, by BatchWriteItem. Their MACs are not valid for their new
 * content: if the sweep read one, it would fail with `Tampered` — a second proof it does not.
 */
const seedFiller = (shape: DynamoDb.DynamoDbShape, template: Record<string, AttributeValue>, count: number) =>
  Effect.gen(function* () {
    const deadline = String(template.GSI1SK?.S ?? "").split("#")[0] ?? ""
    const requests: Array<Array<Record<string, AttributeValue>>> = []
    let batch: Array<Record<string, AttributeValue>> = []
    for (let i = 0; i < count; i++) {
      const id = sessionId(i, 7)
      const data = template.data?.M ?? {}
      batch.push({
        ...template,
        PK: { S: `session#${id}` },
        GSI1SK: { S: `${deadline}#${id}` },
        GSI2SK: { S: `session#active#${deadline}#${id}` },
        data: { M: { ...data, id: { S: id } } }
      })
      if (batch.length === 25) {
        requests.push(batch)
        batch = []
      }
    }
    if (batch.length > 0) requests.push(batch)
    yield* Effect.forEach(
      requests,
      (items) =>
        Effect.promise(async () => {
          let pending:
            | Record<string, Array<{ PutRequest: { Item: Record<string, AttributeValue> } }>>
            | undefined = {
            [shape.tables.coordination]: items.map((Item) => ({ PutRequest: { Item } }))
          }
          while (pending !== undefined && Object.keys(pending).length > 0) {
            const out = await shape.client.send(new BatchWriteItemCommand({ RequestItems: pending }))
            pending = out.UnprocessedItems as typeof pending
          }
        }),
      { concurrency: 8, discard: true }
    )
  })

describe("ExpirySweep", () => {
  it.live(
    `reads about the due sessions only: ${DUE} due among ${TOTAL}`,
    () =>
      Effect.gen(function* () {
        const shared = yield* DynamoDb.DynamoDb
        const shape = freshTables(shared)
        const reads = countReads(shape)
        yield* Effect.gen(function* () {
          const repo = yield* SessionRepository.SessionRepository
          const now = yield* DateTime.now
          // A template item (not due), then the filler from it.
          const templateId = sessionId(999_999_999, 3)
          yield* repo.create(activeSession(templateId, DateTime.add(now, { days: 1 })))
          const stored = yield* Effect.promise(() =>
            shape.client.send(
              new GetItemCommand({
                TableName: shape.tables.coordination,
                Key: { PK: { S: `session#${templateId}` }, SK: { S: "session" } }
              })
            )
          )
          const started = Date.now()
          yield* seedFiller(shape, stored.Item ?? {}, TOTAL - DUE - 1)
          const seedMs = Date.now() - started
          for (let i = 0; i < DUE; i++) {
            yield* repo.create(activeSession(sessionId(i, 11), DateTime.subtract(now, { seconds: 1 + i })))
          }
          reads.reset()
          const result = yield* ExpirySweep.run({ batchSize: 100 })
          const read = reads.items()
          yield* Effect.log(`seeded ${TOTAL} sessions in ${seedMs} ms; the sweep read ${read} items`)
          assert.strictEqual(result.expired, DUE)
          assert.strictEqual(reads.scans(), 0)
          assert.isAtMost(read, DUE + 10)
          assert.isAtLeast(read, DUE)
          // The end state: every due session expired, each audited once; the rest untouched.
          for (let i = 0; i < DUE; i++) {
            const s = yield* repo.get(sessionId(i, 11))
            assert.strictEqual(Option.getOrThrow(s).status, "expired")
          }
          const events = yield* Effect.flatMap(AuditReader.AuditReader, (r) =>
            r.query({ action: "session.expired", limit: 10_000 })
          )
          assert.strictEqual(events.length, DUE)
          assert.strictEqual(new Set(events.map((e) => e.session)).size, DUE)
          assert.strictEqual(Option.getOrThrow(yield* repo.get(templateId)).status, "active")
          assert.strictEqual(
            yield* Effect.flatMap(WorkerMetrics, (m) => m.get("aap_worker_sessions_expired_total")),
            DUE
          )
          // A second run finds nothing and reads (almost) nothing.
          reads.reset()
          assert.strictEqual((yield* ExpirySweep.run()).expired, 0)
          assert.isAtMost(reads.items(), 1)
        }).pipe(Effect.provide(coordination(memoryKeys)), Effect.provideService(DynamoDb.DynamoDb, shape))
      }).pipe(Effect.provide(engine)),
    180_000
  )

  it.live("two sweepers racing expire each session once", () =>
    Effect.gen(function* () {
      const shared = yield* DynamoDb.DynamoDb
      const shape = freshTables(shared)
      yield* Effect.gen(function* () {
        const repo = yield* SessionRepository.SessionRepository
        const now = yield* DateTime.now
        for (let i = 0; i < 60; i++) {
          yield* repo.create(activeSession(sessionId(i, 5), DateTime.subtract(now, { seconds: 1 })))
        }
        const [a, b] = yield* Effect.all(
          [ExpirySweep.run({ batchSize: 7 }), ExpirySweep.run({ batchSize: 7 })],
          {
            concurrency: 2
          }
        )
        // Sessions.sweep also counts a session the other sweeper won (its view shows it expired
        // at the next version), so the sum is not exact; the audit trail is.
        assert.isAtLeast(a.expired + b.expired, 60)
        const events = yield* Effect.flatMap(AuditReader.AuditReader, (r) =>
          r.query({ action: "session.expired", limit: 1000 })
        )
        assert.strictEqual(events.length, 60)
        assert.strictEqual(new Set(events.map((e) => e.session)).size, 60)
      }).pipe(Effect.provide(coordination(memoryKeys)), Effect.provideService(DynamoDb.DynamoDb, shape))
    }).pipe(Effect.provide(engine))
  )
})
