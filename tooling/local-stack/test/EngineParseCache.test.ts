/**
 * The patched engine memoizes expression parses (decisions/0025). A cached parse must give the
 * same answers as a fresh one: results per request values, the "unused names/values" errors,
 * errors never cached, and results not shared between requests (the engine mutates them).
 */
import {
  PutItemCommand,
  QueryCommand,
  type QueryCommandInput,
  UpdateItemCommand
} from "@aws-sdk/client-dynamodb"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { DynamoDb } from "../src/index.js"

const spec: DynamoDb.TableSpec = { table: "vault", partitionKey: "PK", sortKey: "SK" }

const query = (input: Omit<QueryCommandInput, "TableName">) =>
  Effect.gen(function* () {
    const { tables } = yield* DynamoDb.DynamoDb
    return yield* DynamoDb.use("Query", (client, signal) =>
      client.send(new QueryCommand({ TableName: tables.vault, ...input }), { abortSignal: signal })
    )
  })

const reasonOf = (exit: Exit.Exit<unknown, { readonly _tag: string; readonly reason?: string }>) =>
  Exit.isFailure(exit) ? JSON.stringify(exit.cause) : "success"

describe("engine parse cache", () => {
  it.layer(DynamoDb.layerEmbedded({ tablePrefix: "pc" }))((it) => {
    it.effect(
      "repeated expressions with other values, names, errors and mutations answer as fresh parses",
      () =>
        Effect.gen(function* () {
          yield* DynamoDb.ensureTable(spec)
          const { tables } = yield* DynamoDb.DynamoDb
          for (const [pk, sk] of [
            ["a", "s#1"],
            ["a", "s#2"],
            ["a", "t#1"],
            ["b", "s#9"]
          ] as const) {
            yield* DynamoDb.use("PutItem", (client) =>
              client.send(
                new PutItemCommand({
                  TableName: tables.vault,
                  Item: { PK: { S: pk }, SK: { S: sk }, n: { N: "1" } },
                  ConditionExpression: "attribute_not_exists(PK)"
                })
              )
            )
          }
          // The same conditional put again: the cached condition still refuses.
          const again = yield* DynamoDb.use("PutItem", (client) =>
            client.send(
              new PutItemCommand({
                TableName: tables.vault,
                Item: { PK: { S: "a" }, SK: { S: "s#1" } },
                ConditionExpression: "attribute_not_exists(PK)"
              })
            )
          ).pipe(Effect.exit)
          assert.include(reasonOf(again), "ConditionFailed")

          const latest = (pk: string, prefix: string) =>
            query({
              KeyConditionExpression: "PK = :pk AND begins_with(SK, :prefix)",
              ExpressionAttributeValues: { ":pk": { S: pk }, ":prefix": { S: prefix } },
              ScanIndexForward: false,
              Limit: 1,
              ConsistentRead: true
            }).pipe(Effect.map((out) => out.Items?.map((item) => item.SK?.S)))
          for (let i = 0; i < 3; i++) {
            assert.deepStrictEqual(yield* latest("a", "s#"), ["s#2"])
            assert.deepStrictEqual(yield* latest("a", "t#"), ["t#1"])
            assert.deepStrictEqual(yield* latest("b", "s#"), ["s#9"])
            assert.deepStrictEqual(yield* latest("c", "s#"), [])
          }

          // The reversed form `:v = PK` is rewritten by the engine after parsing: still right on a hit.
          for (let i = 0; i < 3; i++) {
            const out = yield* query({
              KeyConditionExpression: ":pk = PK",
              ExpressionAttributeValues: { ":pk": { S: "b" } }
            })
            assert.deepStrictEqual(
              out.Items?.map((item) => item.SK?.S),
              ["s#9"]
            )
          }

          // Names used by two expressions of one request, then by one alone: no spurious "unused".
          for (let i = 0; i < 2; i++) {
            const both = yield* query({
              KeyConditionExpression: "#p = :pk",
              FilterExpression: "#n = :one",
              ProjectionExpression: "#p, #n",
              ExpressionAttributeNames: { "#p": "PK", "#n": "n" },
              ExpressionAttributeValues: { ":pk": { S: "a" }, ":one": { N: "1" } }
            })
            assert.strictEqual(both.Items?.length, 3)
            const alone = yield* query({
              KeyConditionExpression: "PK = :pk",
              ProjectionExpression: "#p, #n",
              ExpressionAttributeNames: { "#p": "PK", "#n": "n" },
              ExpressionAttributeValues: { ":pk": { S: "a" } }
            })
            assert.deepStrictEqual(Object.keys(alone.Items?.[0] ?? {}).sort(), ["PK", "n"])
          }

          // An unused value is reported on every request, also when the parse is cached.
          for (let i = 0; i < 2; i++) {
            const unused = yield* query({
              KeyConditionExpression: "PK = :pk",
              ExpressionAttributeValues: { ":pk": { S: "a" }, ":extra": { S: "x" } }
            }).pipe(Effect.exit)
            assert.include(reasonOf(unused), "ValidationException")
          }
          // Errors are not cached: an undefined value fails every time.
          for (let i = 0; i < 2; i++) {
            const undefinedValue = yield* query({
              KeyConditionExpression: "PK = :missing",
              ExpressionAttributeValues: { ":pk": { S: "a" } }
            }).pipe(Effect.exit)
            assert.include(reasonOf(undefinedValue), "ValidationException")
          }

          // Updates: the cached update expression applies this request's value.
          for (const value of ["5", "7", "5"]) {
            const out = yield* DynamoDb.use("UpdateItem", (client) =>
              client.send(
                new UpdateItemCommand({
                  TableName: tables.vault,
                  Key: { PK: { S: "b" }, SK: { S: "s#9" } },
                  UpdateExpression: "SET #n = :v",
                  ConditionExpression: "attribute_exists(PK)",
                  ExpressionAttributeNames: { "#n": "n" },
                  ExpressionAttributeValues: { ":v": { N: value } },
                  ReturnValues: "ALL_NEW"
                })
              )
            )
            assert.strictEqual(out.Attributes?.n?.N, value)
          }
        })
    )
  })
})
