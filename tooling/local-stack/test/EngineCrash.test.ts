/**
 * The embedded engine killed mid-write. Stock dynalite writes an item's index entries and the
 * item itself as separate LevelDB writes (old index entries deleted, new ones put, then the
 * item), so a SIGKILL between them left an item its GSI no longer lists — the broker's crash
 * test found a session missing from every list after a kill. Our patch of dynalite
 * (patches/dynalite@4.0.0.patch) writes all of them in one atomic batch. After each of 15
 * random kills of a process churning items between two index partitions, every stored item is
 * listed by its index, exactly once.
 */
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { DynamoDBClient, QueryCommand, ScanCommand } from "@aws-sdk/client-dynamodb"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Engine from "../src/Engine.js"

const KILLS = 15
const churn = Path.join(import.meta.dirname, "fixtures/churn.mjs")

/** Starts the churning child and SIGKILLs it 100–500 ms after it reports ready. */
const churnAndKill = (dir: string) =>
  Effect.promise(
    () =>
      new Promise<void>((resolve, reject) => {
        const child = spawn(process.execPath, [churn, dir], { stdio: ["ignore", "pipe", "pipe"] })
        let err = ""
        child.stderr.on("data", (d) => {
          err += d
        })
        child.stdout.on("data", (d) => {
          if (String(d).includes("ready")) setTimeout(() => child.kill("SIGKILL"), 100 + Math.random() * 400)
        })
        child.on("exit", (code, signal) =>
          signal === "SIGKILL" ? resolve() : reject(new Error(`churn exited ${code}: ${err}`))
        )
      })
  )

const consistency = (dir: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const engine = yield* Engine.dynamo({ dir })
      const client = new DynamoDBClient({
        endpoint: engine.endpoint,
        region: "us-east-1",
        credentials: { accessKeyId: "check", secretAccessKey: "check" }
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => client.destroy()))
      return yield* Effect.promise(async () => {
        const items = (await client.send(new ScanCommand({ TableName: "churn" }))).Items ?? []
        const indexed: Array<string> = []
        for (const status of ["status#a", "status#b"]) {
          const page = await client.send(
            new QueryCommand({
              TableName: "churn",
              IndexName: "byStatus",
              KeyConditionExpression: "GPK = :p",
              ExpressionAttributeValues: { ":p": { S: status } }
            })
          )
          for (const i of page.Items ?? []) indexed.push(`${i.GPK?.S}/${i.PK?.S}`)
        }
        return { stored: items.map((i) => `${i.GPK?.S}/${i.PK?.S}`).sort(), indexed: indexed.sort() }
      })
    })
  )

describe("embedded engine under SIGKILL", () => {
  it.live(
    `${KILLS} kills mid-write: every item is listed by its GSI exactly once`,
    () =>
      Effect.gen(function* () {
        const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "aap-engine-crash-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
        for (let round = 1; round <= KILLS; round++) {
          yield* churnAndKill(dir)
          const { stored, indexed } = yield* consistency(dir)
          assert.isAbove(stored.length, 0, `round ${round}: nothing was written`)
          assert.deepStrictEqual(indexed, stored, `round ${round}: the index disagrees with the table`)
        }
      }).pipe(Effect.scoped),
    120_000
  )
})
