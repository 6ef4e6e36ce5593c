/**
 * Listing goes through the indexes: 10,000 sessions of which 20 are pending; listing the
 * pending ones reads those 20 items and no other (counted from every DynamoDB response by a
 * middleware on the client).
 */

import { DynamoDb } from "@aap/local-stack"
import { BatchWriteItemCommand } from "@aws-sdk/client-dynamodb"
import { assert, layer } from "@effect/vitest"
import { DateTime, Effect, Layer, Option } from "effect"
import * as TestServices from "effect/TestServices"
import * as CoordinationStore from "../src/CoordinationStore.js"
import { toAttributes } from "../src/internal/dynamoStore.js"
import * as Session from "../src/Session.js"
import * as SessionRepository from "../src/SessionRepository.js"
import * as Sessions from "../src/Sessions.js"
import { alice, engine, services } from "./support/fixtures.js"

/** Items read, as DynamoDB reports them (ScannedCount for Query/Scan, 1 per GetItem hit). */
const counter = { read: 0, scans: 0 }

const counting = Layer.effect(
  DynamoDb.DynamoDb,
  Effect.map(DynamoDb.DynamoDb, (shared) => {
    shared.client.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args)
        const output = result.output as { ScannedCount?: number; Item?: unknown }
        if (context.commandName === "ScanCommand") counter.scans++
        counter.read += output.ScannedCount ?? (output.Item === undefined ? 0 : 1)
        return result
      },
      { step: "initialize", name: "countItemsRead" }
    )
    return { ...shared, tables: DynamoDb.tables(`listing${process.pid}`) }
  })
).pipe(Layer.provide(engine))

/** The DynamoDB store on the counted client; its table is created with the live clock. */
const store = Layer.effect(
  CoordinationStore.CoordinationStore,
  TestServices.provideLive(
    Effect.flatMap(CoordinationStore.CoordinationStore, Effect.succeed).pipe(
      Effect.provide(CoordinationStore.layerDynamoDb)
    )
  )
)

layer(counting, { timeout: "5 minutes" })("Listing 10,000 sessions", (it) => {
  it.effect(
    "20 pending among 10,000: the pending list reads exactly those 20",
    () =>
      Effect.gen(function* () {
        const { client, tables } = yield* DynamoDb.DynamoDb
        const now = DateTime.unsafeMake(yield* Effect.clockWith((c) => c.currentTimeMillis))
        const agents = ["codex", "claude"]
        const all: Array<Session.Session> = []
        for (let i = 0; i < 10_000; i++) {
          const requiredApprovals = i % 500 === 7 ? 1 : 0 // 20 pending, 10 per agent
          const agent = agents[(requiredApprovals > 0 ? Math.floor(i / 500) : i) % 2]!
          all.push(
            Session.create(
              {
                id: yield* Session.makeId,
                agent,
                wallet: agent,
                capability: requiredApprovals > 0 ? "ssh-platform-host" : "openrouter-chat",
                tier: requiredApprovals > 0 ? "high" : "low",
                ttlSeconds: 900,
                breakGlass: false,
                requiredApprovals,
                approvalWindowSeconds: 900
              },
              now
            ).session
          )
        }
        const items = yield* Effect.forEach(all, (s) => SessionRepository.signItem(s))
        const batches: Array<Array<CoordinationStore.Item>> = []
        for (let i = 0; i < items.length; i += 25) batches.push(items.slice(i, i + 25))
        yield* Effect.forEach(
          batches,
          (batch) =>
            Effect.promise(async () => {
              let pending = batch.map((item) => ({ PutRequest: { Item: toAttributes(item) } }))
              while (pending.length > 0) {
                const out = await client.send(
                  new BatchWriteItemCommand({ RequestItems: { [tables.coordination]: pending } })
                )
                pending = (out.UnprocessedItems?.[tables.coordination] ?? []).flatMap((r) =>
                  r.PutRequest?.Item ? [{ PutRequest: { Item: r.PutRequest.Item } }] : []
                )
              }
            }),
          { concurrency: 8, discard: true }
        )

        const sessions = yield* Sessions.Sessions
        counter.read = 0
        counter.scans = 0
        const page = yield* sessions.list(alice, { status: "pending_approval", limit: 100 })
        assert.strictEqual(page.sessions.length, 20)
        assert.isTrue(Option.isNone(page.cursor))
        assert.isTrue(page.sessions.every((s) => s.status === "pending_approval"))
        assert.strictEqual(counter.read, 20)

        // by agent and status: codex holds 10 of the pending ones among 5,000 sessions
        counter.read = 0
        const codex = yield* sessions.list(alice, { agent: "codex", status: "pending_approval", limit: 100 })
        assert.strictEqual(codex.sessions.length, 10)
        assert.strictEqual(counter.read, 10)

        // a page of the active list reads one page, and the cursor continues it
        counter.read = 0
        const first = yield* sessions.list(alice, { status: "active", limit: 50 })
        assert.strictEqual(first.sessions.length, 50)
        assert.strictEqual(counter.read, 50)
        const second = yield* sessions.list(alice, {
          status: "active",
          limit: 50,
          cursor: Option.getOrThrow(first.cursor)
        })
        assert.strictEqual(second.sessions.length, 50)
        assert.isFalse(second.sessions.some((s) => first.sessions.some((f) => f.id === s.id)))
        assert.strictEqual(counter.scans, 0)
      }).pipe(Effect.provide(services(store))),
    { timeout: 300_000 }
  )
})
