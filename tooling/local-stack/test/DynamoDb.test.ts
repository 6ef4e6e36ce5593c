import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import {
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  ListTablesCommand,
  PutItemCommand
} from "@aws-sdk/client-dynamodb"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Exit, Fiber, Layer, Option, Redacted } from "effect"
import { DynamoDb, StoreError } from "../src/index.js"

const vaultSpec: DynamoDb.TableSpec = { table: "vault", partitionKey: "PK", sortKey: "SK" }

const coordinationSpec: DynamoDb.TableSpec = {
  table: "coordination",
  partitionKey: "PK",
  sortKey: "SK",
  indexes: [
    { name: "GSI1", partitionKey: "GSI1PK", sortKey: "GSI1SK", projection: "ALL" },
    {
      name: "GSI2",
      partitionKey: "GSI2PK",
      sortKey: { name: "expiresAt", type: "N" },
      projection: "KEYS_ONLY"
    }
  ]
}

const put = (table: string, pk: string, conditional: boolean) =>
  DynamoDb.use("PutItem", (client, signal) =>
    client.send(
      new PutItemCommand({
        TableName: table,
        Item: { PK: { S: pk }, SK: { S: "x" } },
        ...(conditional ? { ConditionExpression: "attribute_not_exists(PK)" } : {})
      }),
      { abortSignal: signal }
    )
  )

describe("ensureTable", () => {
  it.layer(DynamoDb.layerEmbedded({ tablePrefix: "t1" }))((it) => {
    it.effect("creates the table once, idempotently, and concurrent creators all succeed", () =>
      Effect.gen(function* () {
        const names = yield* Effect.all(
          Array.from({ length: 8 }, () => DynamoDb.ensureTable(coordinationSpec)),
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(new Set(names), new Set(["t1-coordination"]))
        yield* DynamoDb.ensureTable(coordinationSpec)
        const { client } = yield* DynamoDb.DynamoDb
        const out = yield* Effect.promise(() =>
          client.send(new DescribeTableCommand({ TableName: "t1-coordination" }))
        )
        assert.strictEqual(out.Table?.TableStatus, "ACTIVE")
        assert.deepStrictEqual(
          out.Table?.GlobalSecondaryIndexes?.map((index) => [
            index.IndexName,
            index.Projection?.ProjectionType
          ]),
          [
            ["GSI1", "ALL"],
            ["GSI2", "KEYS_ONLY"]
          ]
        )
        assert.deepStrictEqual(
          out.Table?.AttributeDefinitions?.find((d) => d.AttributeName === "expiresAt")?.AttributeType,
          "N"
        )
      })
    )

    it.effect("refuses an existing table whose indexes differ from the spec", () =>
      Effect.gen(function* () {
        yield* DynamoDb.ensureTable(vaultSpec)
        const error = yield* Effect.flip(
          DynamoDb.ensureTable({
            ...vaultSpec,
            indexes: [{ name: "ByName", partitionKey: "N", projection: "ALL" }]
          })
        )
        assert.strictEqual(error._tag, "StoreUnavailable")
        assert.strictEqual(error._tag === "StoreUnavailable" && error.reason, "MissingIndex:ByName")
      })
    )

    it.effect("maps a failed condition to ConditionFailed and a missing table to StoreUnavailable", () =>
      Effect.gen(function* () {
        const table = yield* DynamoDb.ensureTable(vaultSpec)
        yield* put(table, "a", true)
        const conflict = yield* Effect.flip(put(table, "a", true))
        assert.deepStrictEqual(conflict, new StoreError.ConditionFailed({ operation: "PutItem" }))
        const missing = yield* Effect.flip(put("t1-nope", "a", false))
        assert.deepStrictEqual(
          missing,
          new StoreError.StoreUnavailable({ operation: "PutItem", reason: "ResourceNotFoundException" })
        )
      })
    )

    it.effect("a malformed request is a StoreDefect carrying the error code only", () =>
      Effect.gen(function* () {
        const table = yield* DynamoDb.ensureTable(vaultSpec)
        const exit = yield* Effect.exit(
          DynamoDb.use("GetItem", (client) =>
            client.send(new GetItemCommand({ TableName: table, Key: { PK: { S: "canary-value-123" } } }))
          )
        )
        assert.isTrue(Exit.isFailure(exit))
        const text = JSON.stringify(exit)
        assert.include(text, "StoreDefect")
        assert.include(text, "ValidationException")
        assert.notInclude(text, "canary-value-123")
      })
    )
  })
})

describe("client layers", () => {
  it.effect("an unreachable endpoint is StoreUnavailable, not an SDK error", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        DynamoDb.use("ListTables", (client, signal) =>
          client.send(new ListTablesCommand({}), { abortSignal: signal })
        )
      )
      assert.strictEqual(error._tag, "StoreUnavailable")
      assert.deepStrictEqual(Object.keys(error).sort(), ["_tag", "operation", "reason"])
    }).pipe(
      Effect.provide(
        DynamoDb.layerEndpoint({
          endpoint: "http://127.0.0.1:1",
          maxAttempts: 1,
          credentials: { accessKeyId: "x", secretAccessKey: Redacted.make("y") }
        })
      )
    )
  )

  it.effect("a call that takes longer than the timeout is aborted as StoreUnavailable(Timeout)", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        DynamoDb.use(
          "Slow",
          (_client, signal) => new Promise<never>((_, reject) => signal.addEventListener("abort", reject))
        )
      )
      assert.deepStrictEqual(error, new StoreError.StoreUnavailable({ operation: "Slow", reason: "Timeout" }))
    }).pipe(
      Effect.provide(
        Layer.effect(
          DynamoDb.DynamoDb,
          Effect.map(DynamoDb.DynamoDb, (shape) => ({ ...shape, timeout: Duration.millis(50) }))
        ).pipe(Layer.provide(DynamoDb.layerEmbedded()))
      )
    )
  )

  it.effect("interrupting the calling fiber aborts the call's signal", () =>
    Effect.gen(function* () {
      const shape = yield* DynamoDb.DynamoDb
      let seen: AbortSignal | undefined
      const fiber = yield* Effect.fork(
        DynamoDb.useWith(shape, "Hangs", (_client, signal) => {
          seen = signal
          return new Promise<never>(() => {})
        })
      )
      yield* Effect.yieldNow()
      assert.isFalse(seen?.aborted)
      yield* Fiber.interrupt(fiber)
      assert.isTrue(seen?.aborted)
    }).pipe(Effect.provide(DynamoDb.layerEmbedded()))
  )

  it.effect("useWith: a result, a synchronous throw and an SDK error each map like use", () =>
    Effect.gen(function* () {
      const shape = yield* DynamoDb.DynamoDb
      const ok = yield* DynamoDb.useWith(shape, "Ok", (_client, signal) => Promise.resolve(signal.aborted))
      assert.isFalse(ok)
      const thrown = yield* Effect.flip(
        DynamoDb.useWith(shape, "Throws", () => {
          throw Object.assign(new Error("x"), { name: "ConditionalCheckFailedException" })
        })
      )
      assert.deepStrictEqual(thrown, new StoreError.ConditionFailed({ operation: "Throws" }))
      const rejected = yield* Effect.flip(
        DynamoDb.useWith(shape, "Rejects", () =>
          Promise.reject(Object.assign(new Error("x"), { name: "ThrottlingException" }))
        )
      )
      assert.deepStrictEqual(rejected, new StoreError.Throttled({ operation: "Rejects" }))
    }).pipe(Effect.provide(DynamoDb.layerEmbedded()))
  )

  it.effect("the client goes without the SDK's logger middleware, and still works", () =>
    Effect.gen(function* () {
      // the name is the SDK's: a stock client has it (else the removal would silently do nothing)
      const stock = new DynamoDBClient({ region: "us-east-1" })
      assert.isTrue(stock.middlewareStack.identify().some((m) => m.startsWith(DynamoDb.LOGGER_MIDDLEWARE)))
      stock.destroy()
      const shape = yield* DynamoDb.DynamoDb
      assert.isFalse(
        shape.client.middlewareStack.identify().some((m) => m.startsWith(DynamoDb.LOGGER_MIDDLEWARE))
      )
      const table = yield* DynamoDb.ensureTable(vaultSpec)
      yield* put(table, "without-logger", false)
    }).pipe(Effect.provide(DynamoDb.layerEmbedded()))
  )

  it.effect("both signing modes talk to the embedded engine", () =>
    Effect.gen(function* () {
      for (const signing of ["sigv4", "static-local"] as const) {
        const names = yield* Effect.gen(function* () {
          const table = yield* DynamoDb.ensureTable(vaultSpec)
          yield* put(table, signing, false)
          return table
        }).pipe(Effect.provide(DynamoDb.layerEmbedded({ signing })))
        assert.strictEqual(names, "aap-vault")
      }
    })
  )

  it.effect("layerConfig: no endpoint means the embedded engine on disk under AAP_HOME/data", () =>
    Effect.gen(function* () {
      const home = mkdtempSync(join(tmpdir(), "aap-home-"))
      const config = ConfigProvider.fromMap(
        new Map([
          ["AAP_HOME", home],
          ["AAP_TABLE_PREFIX", "cfg"]
        ])
      )
      const round = (write: boolean) =>
        Effect.gen(function* () {
          const shape = yield* DynamoDb.DynamoDb
          assert.isTrue(Option.isSome(shape.endpoint))
          const table = yield* DynamoDb.ensureTable(vaultSpec)
          assert.strictEqual(table, "cfg-vault")
          if (write) yield* put(table, "persisted", true)
          return yield* Effect.flip(put(table, "persisted", true))
        }).pipe(Effect.provide(DynamoDb.layerConfig), Effect.withConfigProvider(config))
      yield* Effect.ignore(round(true))
      const second = yield* round(false)
      assert.strictEqual(second._tag, "ConditionFailed")
      rmSync(home, { recursive: true, force: true })
    })
  )

  it.effect("layerConfig: a bad endpoint or prefix is a ConfigError naming the variable", () =>
    Effect.gen(function* () {
      const bad = (entries: Array<[string, string]>) =>
        Effect.flip(
          Effect.provide(DynamoDb.DynamoDb, DynamoDb.layerConfig).pipe(
            Effect.withConfigProvider(ConfigProvider.fromMap(new Map(entries)))
          )
        )
      const endpoint = yield* bad([["AAP_DYNAMODB_ENDPOINT", "localhost:8000"]])
      assert.include(String(endpoint), "AAP_DYNAMODB_ENDPOINT")
      const prefix = yield* bad([
        ["AAP_DYNAMODB_ENDPOINT", "aws"],
        ["AAP_TABLE_PREFIX", "no spaces"]
      ])
      assert.include(String(prefix), "AAP_TABLE_PREFIX")
    })
  )
})
