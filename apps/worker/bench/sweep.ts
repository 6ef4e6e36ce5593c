/**
 * The expiry sweep on a large table: 100 due sessions among `--total` (default 100,000) on the
 * embedded engine. Figure: items DynamoDB read for the sweep (from the responses' ScannedCount),
 * against a same-run baseline: a Scan with a filter for due sessions, which is what finding them
 * without the GSI would cost. Also the wall time of both.
 *
 *   pnpm bench                 # table
 *   pnpm bench -- --json       # rows {figure, unit, value, baseline, ratio, target, met}
 *   pnpm bench -- --total 20000
 */
import { SessionRepository } from "@aap/agent-coordination"
import { DynamoDb } from "@aap/local-stack"
import {
  type AttributeValue,
  BatchWriteItemCommand,
  GetItemCommand,
  ScanCommand
} from "@aws-sdk/client-dynamodb"
import { DateTime, Effect } from "effect"
import * as ExpirySweep from "../src/ExpirySweep.js"
import {
  activeSession,
  coordination,
  countReads,
  freshTables,
  memoryKeys,
  sessionId
} from "../test/support/stack.js"

const args = process.argv.slice(2)
const json = args.includes("--json")
const totalArg = args.indexOf("--total")
const TOTAL = totalArg >= 0 ? Number(args[totalArg + 1]) : 100_000
const DUE = 100

const program = Effect.gen(function* () {
  const shape = freshTables(yield* DynamoDb.DynamoDb)
  const reads = countReads(shape)
  return yield* Effect.gen(function* () {
    const repo = yield* SessionRepository.SessionRepository
    const now = yield* DateTime.now
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
    const template = stored.Item ?? {}
    const deadline = String(template.GSI1SK?.S ?? "").split("#")[0] ?? ""
    const batches: Array<Array<Record<string, AttributeValue>>> = []
    for (let i = 0; i < TOTAL - DUE - 1; i += 25) {
      const batch: Array<Record<string, AttributeValue>> = []
      for (let j = i; j < Math.min(i + 25, TOTAL - DUE - 1); j++) {
        const id = sessionId(j, 7)
        batch.push({
          ...template,
          PK: { S: `session#${id}` },
          GSI1SK: { S: `${deadline}#${id}` },
          GSI2SK: { S: `session#active#${deadline}#${id}` },
          data: { M: { ...(template.data?.M ?? {}), id: { S: id } } }
        })
      }
      batches.push(batch)
    }
    const seedStart = Date.now()
    yield* Effect.forEach(
      batches,
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
    const seedMs = Date.now() - seedStart
    for (let i = 0; i < DUE; i++) {
      yield* repo.create(activeSession(sessionId(i, 11), DateTime.subtract(now, { seconds: 1 + i })))
    }
    // Baseline first (read-only): a Scan for due live sessions.
    reads.reset()
    const scanStart = Date.now()
    let found = 0
    let start: Record<string, AttributeValue> | undefined
    do {
      const out = yield* Effect.promise(() =>
        shape.client.send(
          new ScanCommand({
            TableName: shape.tables.coordination,
            FilterExpression: "begins_with(GSI1PK, :live) AND GSI1SK <= :now",
            ExpressionAttributeValues: {
              ":live": { S: "session-status#active" },
              ":now": { S: `${DateTime.formatIso(now)}#~` }
            },
            ...(start === undefined ? {} : { ExclusiveStartKey: start })
          })
        )
      )
      found += out.Count ?? 0
      start = out.LastEvaluatedKey
    } while (start !== undefined)
    const scanRead = reads.items()
    const scanMs = Date.now() - scanStart
    reads.reset()
    const sweepStart = Date.now()
    const result = yield* ExpirySweep.run({ batchSize: 100 })
    const sweepMs = Date.now() - sweepStart
    const sweepRead = reads.items()
    return { seedMs, scanRead, scanMs, found, sweepRead, sweepMs, expired: result.expired }
  }).pipe(Effect.provide(coordination(memoryKeys)), Effect.provideService(DynamoDb.DynamoDb, shape))
}).pipe(Effect.provide(DynamoDb.layerEmbedded()))

Effect.runPromise(program).then((r) => {
  const rows = [
    {
      figure: `items read to expire ${DUE} due of ${TOTAL} sessions`,
      unit: "items",
      value: r.sweepRead,
      baseline: r.scanRead,
      ratio: r.scanRead === 0 ? 0 : r.sweepRead / r.scanRead,
      target: `<= ${Math.round(DUE * 1.1)}`,
      met: r.sweepRead <= DUE * 1.1 && r.expired === DUE
    },
    {
      figure: `wall time to find and expire ${DUE} due of ${TOTAL} (baseline: Scan only)`,
      unit: "ms",
      value: r.sweepMs,
      baseline: r.scanMs,
      ratio: r.scanMs === 0 ? 0 : r.sweepMs / r.scanMs,
      target: "< baseline",
      met: r.sweepMs < r.scanMs
    }
  ]
  if (json) {
    for (const row of rows) process.stdout.write(`${JSON.stringify(row)}\n`)
  } else {
    process.stdout.write(`seeded ${TOTAL} sessions in ${r.seedMs} ms; the Scan found ${r.found} due\n`)
    for (const row of rows) {
      process.stdout.write(
        `${row.figure}: ${row.value} ${row.unit} (baseline ${row.baseline}, ratio ${row.ratio.toFixed(4)}, target ${row.target}, ${row.met ? "met" : "NOT met"})\n`
      )
    }
  }
  process.exit(0)
})
