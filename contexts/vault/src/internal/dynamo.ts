import { DynamoDb, type StoreError } from "@aap/local-stack"
import {
  type AttributeValue,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  type QueryCommandInput
} from "@aws-sdk/client-dynamodb"
import { Effect, Option } from "effect"
import { type Backend, BackendError, Conflict, type Row, type RowMeta } from "./backend.js"

type Item = Record<string, AttributeValue>

/** The vault table (DESIGN §7): string keys `PK` / `SK`, no indexes. */
export const tableSpec: DynamoDb.TableSpec = { table: "vault", partitionKey: "PK", sortKey: "SK" }

export const partitionKey = (wallet: string): string => `wallet#${wallet}`
export const namePrefix = (name: string): string => `secret#${name}#v`
export const sortKey = (name: string, version: number): string =>
  `${namePrefix(name)}${String(version).padStart(9, "0")}`

const ENVELOPE_ATTRIBUTES = ["content_encrypted", "content_nonce", "wrapped_dek", "key_id"] as const

const toBackendError = (error: StoreError.StoreFailure): BackendError | Conflict =>
  error._tag === "ConditionFailed"
    ? new Conflict()
    : new BackendError(error._tag === "Throttled" ? "store-throttled" : "store-unavailable")

const readError = (error: StoreError.StoreFailure): BackendError =>
  new BackendError(error._tag === "Throttled" ? "store-throttled" : "store-unavailable")

const itemToMeta = (item: Item): Option.Option<RowMeta> => {
  const wallet = item.wallet?.S
  const name = item.secret_name?.S
  const version = Number(item.version?.N)
  const createdAt = Date.parse(item.created_at?.S ?? "")
  if (
    wallet === undefined ||
    name === undefined ||
    !Number.isSafeInteger(version) ||
    Number.isNaN(createdAt)
  ) {
    return Option.none()
  }
  return Option.some({ wallet, name, version, createdAt, tombstone: item.tombstone?.BOOL === true })
}

/**
 * An item that lacks its metadata is treated as present but unreadable: the envelope check
 * then reports an integrity error rather than pretending the version does not exist.
 */
const itemToRow = (item: Item, wallet: string, name: string, version: number): Row => {
  const meta = itemToMeta(item)
  const tombstone = Option.isSome(meta) && meta.value.tombstone
  return {
    wallet,
    name,
    version,
    createdAt: Option.match(meta, { onNone: () => 0, onSome: (m) => m.createdAt }),
    envelope: tombstone ? Option.none() : Option.some(item)
  }
}

const versionOfSortKey = (sk: string): number => Number(sk.slice(sk.lastIndexOf("#v") + 2))

export const makeDynamoBackend = Effect.gen(function* () {
  const db = yield* DynamoDb.DynamoDb
  const TableName = db.tables.vault

  const query = (operation: string, input: Omit<QueryCommandInput, "TableName">) =>
    DynamoDb.useWith(db, operation, (client, signal) =>
      client.send(new QueryCommand({ TableName, ConsistentRead: true, ...input }), { abortSignal: signal })
    ).pipe(Effect.mapError(readError))

  const backend: Backend = {
    latest: (wallet, name) =>
      query("Query(latest)", {
        KeyConditionExpression: "PK = :pk AND begins_with(SK, :prefix)",
        ExpressionAttributeValues: { ":pk": { S: partitionKey(wallet) }, ":prefix": { S: namePrefix(name) } },
        ScanIndexForward: false,
        Limit: 1
      }).pipe(
        Effect.map((out) =>
          Option.map(Option.fromNullable(out.Items?.[0]), (item) =>
            itemToRow(item, wallet, name, versionOfSortKey(item.SK?.S ?? ""))
          )
        )
      ),

    at: (wallet, name, version) =>
      DynamoDb.useWith(db, "GetItem", (client, signal) =>
        client.send(
          new GetItemCommand({
            TableName,
            ConsistentRead: true,
            Key: { PK: { S: partitionKey(wallet) }, SK: { S: sortKey(name, version) } }
          }),
          { abortSignal: signal }
        )
      ).pipe(
        Effect.mapError(readError),
        Effect.map((out) =>
          Option.map(Option.fromNullable(out.Item), (item) => itemToRow(item, wallet, name, version))
        )
      ),

    deletedAfter: (wallet, name, version) =>
      Effect.gen(function* () {
        let start: Item | undefined
        do {
          const out = yield* query("Query(tombstones)", {
            KeyConditionExpression: "PK = :pk AND SK BETWEEN :from AND :to",
            FilterExpression: "#t = :true",
            ExpressionAttributeNames: { "#t": "tombstone" },
            ProjectionExpression: "SK",
            ExpressionAttributeValues: {
              ":pk": { S: partitionKey(wallet) },
              ":from": { S: sortKey(name, version + 1) },
              ":to": { S: sortKey(name, 999_999_999) },
              ":true": { BOOL: true }
            },
            ...(start === undefined ? {} : { ExclusiveStartKey: start })
          })
          if ((out.Items?.length ?? 0) > 0) return true
          start = out.LastEvaluatedKey
        } while (start !== undefined)
        return false
      }),

    insert: (row) =>
      DynamoDb.useWith(db, "PutItem", (client, signal) =>
        client.send(
          new PutItemCommand({
            TableName,
            Item: {
              PK: { S: partitionKey(row.wallet) },
              SK: { S: sortKey(row.name, row.version) },
              wallet: { S: row.wallet },
              secret_name: { S: row.name },
              version: { N: String(row.version) },
              created_at: { S: new Date(row.createdAt).toISOString() },
              ...Option.match(row.envelope, {
                onNone: () => ({ tombstone: { BOOL: true } }),
                onSome: (envelope) => {
                  const attributes: Item = {}
                  for (const name of ENVELOPE_ATTRIBUTES) {
                    const value = envelope[name]
                    if (value instanceof Uint8Array) attributes[name] = { B: value }
                    else if (typeof value === "string") attributes[name] = { S: value }
                  }
                  return attributes
                }
              })
            },
            ConditionExpression: "attribute_not_exists(PK)"
          }),
          { abortSignal: signal }
        )
      ).pipe(Effect.asVoid, Effect.mapError(toBackendError)),

    scan: (wallet) =>
      Effect.gen(function* () {
        const rows: Array<RowMeta> = []
        let start: Item | undefined
        do {
          const out = yield* query("Query(list)", {
            KeyConditionExpression: "PK = :pk AND begins_with(SK, :secret)",
            ProjectionExpression: "#w, #n, #v, #c, #t",
            ExpressionAttributeNames: {
              "#w": "wallet",
              "#n": "secret_name",
              "#v": "version",
              "#c": "created_at",
              "#t": "tombstone"
            },
            ExpressionAttributeValues: { ":pk": { S: partitionKey(wallet) }, ":secret": { S: "secret#" } },
            ...(start === undefined ? {} : { ExclusiveStartKey: start })
          })
          for (const item of out.Items ?? []) {
            const meta = itemToMeta(item)
            if (Option.isSome(meta)) rows.push(meta.value)
          }
          start = out.LastEvaluatedKey
        } while (start !== undefined)
        return rows
      })
  }
  return backend
})
