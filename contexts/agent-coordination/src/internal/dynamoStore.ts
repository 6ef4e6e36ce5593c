import { DynamoDb, type StoreError } from "@aap/local-stack"
import {
  type AttributeValue,
  DescribeTimeToLiveCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  type QueryCommandInput,
  UpdateItemCommand,
  UpdateTimeToLiveCommand
} from "@aws-sdk/client-dynamodb"
import { Effect, Option } from "effect"
import type {
  CoordinationStoreShape,
  IndexName,
  Item,
  Json,
  JsonObject,
  Query
} from "../CoordinationStore.js"
import { ConditionFailed } from "../CoordinationStore.js"
import { Unavailable } from "../Errors.js"
import * as Cursor from "./cursor.js"

export const tableSpec: DynamoDb.TableSpec = {
  table: "coordination",
  partitionKey: "PK",
  sortKey: "SK",
  indexes: [
    { name: "GSI1", partitionKey: "GSI1PK", sortKey: "GSI1SK", projection: "ALL" },
    { name: "GSI2", partitionKey: "GSI2PK", sortKey: "GSI2SK", projection: "ALL" }
  ]
}

const indexes: Record<IndexName, { name: string; pk: string; sk: string }> = {
  byStatus: { name: "GSI1", pk: "GSI1PK", sk: "GSI1SK" },
  byOwner: { name: "GSI2", pk: "GSI2PK", sk: "GSI2SK" }
}

// --- JSON <-> AttributeValue ------------------------------------------------------------------

export const marshal = (value: Json): AttributeValue => {
  if (value === null) return { NULL: true }
  if (typeof value === "string") return { S: value }
  if (typeof value === "number") return { N: String(value) }
  if (typeof value === "boolean") return { BOOL: value }
  if (Array.isArray(value)) return { L: value.map(marshal) }
  const out: Record<string, AttributeValue> = {}
  for (const [k, v] of Object.entries(value as JsonObject)) if (v !== undefined) out[k] = marshal(v)
  return { M: out }
}

/** Unknown attribute types (sets, binary) come only from a hand edit; they read as `null`. */
export const unmarshal = (value: AttributeValue): Json => {
  if (value.S !== undefined) return value.S
  if (value.N !== undefined) return Number(value.N)
  if (value.BOOL !== undefined) return value.BOOL
  if (value.L !== undefined) return value.L.map(unmarshal)
  if (value.M !== undefined) {
    const out: Record<string, Json> = {}
    for (const [k, v] of Object.entries(value.M)) out[k] = unmarshal(v)
    return out
  }
  return null
}

const str = (av: AttributeValue | undefined): string | undefined => av?.S

export const toAttributes = (item: Item): Record<string, AttributeValue> => ({
  PK: { S: item.pk },
  SK: { S: item.sk },
  version: { N: String(item.version) },
  data: marshal(item.data),
  mac: { S: item.mac },
  ...(item.byStatus ? { GSI1PK: { S: item.byStatus.pk }, GSI1SK: { S: item.byStatus.sk } } : {}),
  ...(item.byOwner ? { GSI2PK: { S: item.byOwner.pk }, GSI2SK: { S: item.byOwner.sk } } : {}),
  ...(item.expireAt !== undefined ? { ttl: { N: String(Math.floor(item.expireAt)) } } : {})
})

const fromAttributes = (a: Record<string, AttributeValue>): Item => {
  const data = a.data === undefined ? {} : unmarshal(a.data)
  const gsi1pk = str(a.GSI1PK)
  const gsi1sk = str(a.GSI1SK)
  const gsi2pk = str(a.GSI2PK)
  const gsi2sk = str(a.GSI2SK)
  return {
    pk: str(a.PK) ?? "",
    sk: str(a.SK) ?? "",
    version: Number(a.version?.N ?? "0"),
    data: typeof data === "object" && data !== null && !Array.isArray(data) ? (data as Item["data"]) : {},
    mac: str(a.mac) ?? "",
    ...(gsi1pk !== undefined && gsi1sk !== undefined ? { byStatus: { pk: gsi1pk, sk: gsi1sk } } : {}),
    ...(gsi2pk !== undefined && gsi2sk !== undefined ? { byOwner: { pk: gsi2pk, sk: gsi2sk } } : {}),
    ...(a.ttl?.N !== undefined ? { expireAt: Number(a.ttl.N) } : {})
  }
}

const unavailable = (error: StoreError.StoreUnavailable | StoreError.Throttled) =>
  new Unavailable({
    message: `coordination store unavailable (${error._tag === "Throttled" ? "Throttled" : error.reason})`,
    dependency: "store"
  })

/**
 * Turns on DynamoDB TTL on the `ttl` attribute (production clean-up of ended sessions, used
 * link codes and rate windows). Expiry decisions never depend on it. Idempotent: "already
 * enabled" counts as success. The embedded engine has no TTL, so this is for AWS only.
 */
export const enableTimeToLive: Effect.Effect<void, Unavailable, DynamoDb.DynamoDb> = Effect.gen(function* () {
  const { tables } = yield* DynamoDb.DynamoDb
  const TableName = tables.coordination
  const mapError = (error: StoreError.StoreFailure) =>
    error._tag === "ConditionFailed"
      ? new Unavailable({ message: "unexpected condition failure", dependency: "store" })
      : unavailable(error)
  const described = yield* DynamoDb.use("DescribeTimeToLive", (client, signal) =>
    client.send(new DescribeTimeToLiveCommand({ TableName }), { abortSignal: signal })
  ).pipe(Effect.mapError(mapError))
  const status = described.TimeToLiveDescription?.TimeToLiveStatus
  if (status === "ENABLED" || status === "ENABLING") return
  yield* DynamoDb.use("UpdateTimeToLive", (client, signal) =>
    client.send(
      new UpdateTimeToLiveCommand({
        TableName,
        TimeToLiveSpecification: { AttributeName: "ttl", Enabled: true }
      }),
      { abortSignal: signal }
    )
  ).pipe(Effect.mapError(mapError))
})

export const make: Effect.Effect<CoordinationStoreShape, Unavailable, DynamoDb.DynamoDb> = Effect.gen(
  function* () {
    const context = yield* Effect.context<DynamoDb.DynamoDb>()
    const table = yield* DynamoDb.ensureTable(tableSpec).pipe(Effect.mapError(unavailable))

    const run = <A>(
      operation: string,
      f: Parameters<typeof DynamoDb.use<A>>[1]
    ): Effect.Effect<A, StoreError.StoreFailure> => DynamoDb.use(operation, f).pipe(Effect.provide(context))

    const noCondition = <A>(
      effect: Effect.Effect<A, StoreError.StoreFailure>
    ): Effect.Effect<A, Unavailable> =>
      effect.pipe(
        Effect.catchAll((error) =>
          error._tag === "ConditionFailed"
            ? Effect.fail(new Unavailable({ message: "unexpected condition failure", dependency: "store" }))
            : Effect.fail(unavailable(error))
        )
      )

    const query = (q: Query) =>
      Effect.gen(function* () {
        const ix = indexes[q.index]
        const start = q.cursor === undefined ? undefined : yield* Cursor.decode(q.cursor, q.index, q.pk)
        const names: Record<string, string> = { "#p": ix.pk }
        const values: Record<string, AttributeValue> = { ":p": { S: q.pk } }
        let condition = "#p = :p"
        if (q.range !== undefined) {
          names["#s"] = ix.sk
          if (q.range._tag === "BeginsWith") {
            values[":a"] = { S: q.range.prefix }
            condition += " AND begins_with(#s, :a)"
          } else {
            values[":a"] = { S: q.range.low }
            values[":b"] = { S: q.range.high }
            condition += " AND #s BETWEEN :a AND :b"
          }
        }
        const input: QueryCommandInput = {
          TableName: table,
          IndexName: ix.name,
          KeyConditionExpression: condition,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          Limit: q.limit,
          ...(q.select === "count" ? { Select: "COUNT" as const } : {}),
          ...(start === undefined
            ? {}
            : {
                ExclusiveStartKey: Object.fromEntries(
                  Object.entries(start).map(([k, v]) => [k, { S: v } satisfies AttributeValue])
                )
              })
        }
        const out = yield* noCondition(
          run("Query", (client, signal) => client.send(new QueryCommand(input), { abortSignal: signal }))
        )
        const last = out.LastEvaluatedKey
        const lastKey: Record<string, string> = {}
        for (const [k, v] of Object.entries(last ?? {})) if (v.S !== undefined) lastKey[k] = v.S
        return {
          items: q.select === "count" ? [] : (out.Items ?? []).map(fromAttributes),
          count: out.Count ?? 0,
          cursor:
            last === undefined
              ? Option.none()
              : Option.some(Cursor.encode({ i: q.index, p: q.pk, k: lastKey })),
          read: out.ScannedCount ?? out.Count ?? 0
        }
      })

    return {
      get: (pk, sk) =>
        noCondition(
          run("GetItem", (client, signal) =>
            client.send(
              new GetItemCommand({
                TableName: table,
                Key: { PK: { S: pk }, SK: { S: sk } },
                ConsistentRead: true
              }),
              { abortSignal: signal }
            )
          )
        ).pipe(Effect.map((out) => Option.map(Option.fromNullable(out.Item), fromAttributes))),
      put: (item, condition) =>
        run("PutItem", (client, signal) =>
          client.send(
            new PutItemCommand({
              TableName: table,
              Item: toAttributes(item),
              ...(condition._tag === "Absent"
                ? { ConditionExpression: "attribute_not_exists(PK)" }
                : {
                    ConditionExpression: "#v = :v",
                    ExpressionAttributeNames: { "#v": "version" },
                    ExpressionAttributeValues: { ":v": { N: String(condition.expected) } }
                  })
            }),
            { abortSignal: signal }
          )
        ).pipe(
          Effect.asVoid,
          Effect.catchAll(
            (error): Effect.Effect<never, ConditionFailed | Unavailable> =>
              error._tag === "ConditionFailed"
                ? Effect.fail(new ConditionFailed({ pk: item.pk }))
                : Effect.fail(unavailable(error))
          )
        ),
      query,
      increment: (pk, sk, limit, expireAt) =>
        run("UpdateItem", (client, signal) =>
          client.send(
            new UpdateItemCommand({
              TableName: table,
              Key: { PK: { S: pk }, SK: { S: sk } },
              UpdateExpression: "ADD #n :one SET #t = :t",
              ConditionExpression: "attribute_not_exists(#n) OR #n < :limit",
              ExpressionAttributeNames: { "#n": "count", "#t": "ttl" },
              ExpressionAttributeValues: {
                ":one": { N: "1" },
                ":limit": { N: String(limit) },
                ":t": { N: String(Math.floor(expireAt)) }
              }
            }),
            { abortSignal: signal }
          )
        ).pipe(
          Effect.as(true),
          Effect.catchAll((error) =>
            error._tag === "ConditionFailed" ? Effect.succeed(false) : Effect.fail(unavailable(error))
          )
        )
    }
  }
)
