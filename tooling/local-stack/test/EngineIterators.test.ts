/**
 * Every LevelDB iterator a Query or Scan opens is closed again (decisions/0024). dynalite 4's
 * stream shim closed iterators with `iterator.return()`, which abstract-level iterators do not
 * have, so every Query and Scan left its iterator open: on disk each one holds a LevelDB
 * snapshot and native memory. A long `aap serve` grew past 1 GiB RSS and slowed down. The
 * open iterators are counted on the abstract-level class dynalite's stores use, in memory
 * (memory-level) and on disk (classic-level).
 */
import * as Fs from "node:fs"
import { createRequire } from "node:module"
import * as Os from "node:os"
import * as Path from "node:path"
import { PutItemCommand, QueryCommand, ScanCommand } from "@aws-sdk/client-dynamodb"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { DynamoDb } from "../src/index.js"

interface Resource {
  readonly constructor: { readonly name: string }
}
interface LevelPrototype {
  attachResource(this: unknown, resource: Resource): void
  detachResource(this: unknown, resource: Resource): void
}

/** The abstract-level copies behind dynalite's `level` (disk) and `memory-level` (memory). */
const abstractLevels = (): ReadonlyArray<LevelPrototype> => {
  const fromHere = createRequire(import.meta.url)
  const fromDynalite = createRequire(fromHere.resolve("dynalite"))
  const fromLevel = createRequire(fromDynalite.resolve("level"))
  const entries = [
    createRequire(fromLevel.resolve("classic-level")).resolve("abstract-level"),
    createRequire(fromDynalite.resolve("memory-level")).resolve("abstract-level")
  ]
  return [...new Set(entries)].map(
    (entry) => (fromHere(entry) as { AbstractLevel: { prototype: LevelPrototype } }).AbstractLevel.prototype
  )
}

/** Counts open iterators (resources attached to a store and not yet detached) and all ever opened. */
const iteratorCounter = () => {
  const open = new Set<Resource>()
  let opened = 0
  for (const proto of abstractLevels()) {
    const attach = proto.attachResource
    const detach = proto.detachResource
    proto.attachResource = function (resource) {
      if (/Iterator/.test(resource.constructor.name)) {
        open.add(resource)
        opened++
      }
      return attach.call(this, resource)
    }
    proto.detachResource = function (resource) {
      open.delete(resource)
      return detach.call(this, resource)
    }
  }
  return { open: () => open.size, opened: () => opened }
}

const counter = iteratorCounter()
const spec: DynamoDb.TableSpec = { table: "vault", partitionKey: "PK", sortKey: "SK" }
const ROUNDS = 60

/** A real pause (the test clock does not advance `Effect.sleep` inside `it.effect`). */
const pause = (ms: number) => Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, ms)))

/** Queries that stop at their Limit, that run to the partition's end, and scans. */
const workload = Effect.gen(function* () {
  yield* DynamoDb.ensureTable(spec)
  const { tables } = yield* DynamoDb.DynamoDb
  for (let v = 1; v <= 5; v++) {
    yield* DynamoDb.use("PutItem", (client) =>
      client.send(
        new PutItemCommand({ TableName: tables.vault, Item: { PK: { S: "w" }, SK: { S: `s#${v}` } } })
      )
    )
  }
  // let table creation and the puts settle, then count from here
  yield* pause(50)
  const before = counter.open()
  const openedBefore = counter.opened()
  for (let i = 0; i < ROUNDS; i++) {
    const latest = yield* DynamoDb.use("Query", (client) =>
      client.send(
        new QueryCommand({
          TableName: tables.vault,
          KeyConditionExpression: "PK = :pk",
          ExpressionAttributeValues: { ":pk": { S: "w" } },
          ScanIndexForward: false,
          Limit: 1
        })
      )
    )
    assert.strictEqual(latest.Items?.[0]?.SK?.S, "s#5")
    const all = yield* DynamoDb.use("Query", (client) =>
      client.send(
        new QueryCommand({
          TableName: tables.vault,
          KeyConditionExpression: "PK = :pk",
          ExpressionAttributeValues: { ":pk": { S: "w" } }
        })
      )
    )
    assert.strictEqual(all.Items?.length, 5)
    yield* DynamoDb.use("Scan", (client) =>
      client.send(new ScanCommand({ TableName: tables.vault, Limit: 2 }))
    )
  }
  // closing is asynchronous: give it a few turns
  yield* pause(50)
  return { before, after: counter.open(), opened: counter.opened() - openedBefore }
})

describe("engine iterators", () => {
  it.layer(DynamoDb.layerEmbedded({ tablePrefix: "it" }))((it) => {
    it.effect("in memory: Query and Scan close every iterator they open", () =>
      Effect.gen(function* () {
        const { before, after, opened } = yield* workload
        // The hooks saw the requests' iterators (else "none left open" would hold vacuously).
        assert.isAtLeast(opened, 3 * ROUNDS)
        // 180 requests ran; an open iterator left per request would show as 180
        assert.isAtMost(after - before, 2)
      })
    )
  })

  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "aap-iterators-"))
  it.layer(DynamoDb.layerEmbedded({ tablePrefix: "it", dir }))((it) => {
    it.effect("on disk: Query and Scan close every iterator they open", () =>
      Effect.gen(function* () {
        const { before, after, opened } = yield* workload
        assert.isAtLeast(opened, 3 * ROUNDS)
        assert.isAtMost(after - before, 2)
      })
    )
  })
})
