import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { KeyProvider } from "@aap/key-custody"
import { DynamoDb } from "@aap/local-stack"
import { GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Redacted } from "effect"
import { SecretStore } from "../src/index.js"

const failureTag = <A, E extends { readonly _tag: string }>(exit: Exit.Exit<A, E>): string =>
  Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error._tag : `not a failure: ${exit._tag}`

const sk = (name: string, version: number) => `secret#${name}#v${String(version).padStart(9, "0")}`

/** Copy the stored item at (wallet, name, version) to another key, keeping every attribute. */
const copyItem = (from: [string, string, number], to: [string, string, number]) =>
  Effect.gen(function* () {
    const { client, tables } = yield* DynamoDb.DynamoDb
    const out = yield* Effect.promise(() =>
      client.send(
        new GetItemCommand({
          TableName: tables.vault,
          Key: { PK: { S: `wallet#${from[0]}` }, SK: { S: sk(from[1], from[2]) } }
        })
      )
    )
    const item = out.Item!
    yield* Effect.promise(() =>
      client.send(
        new PutItemCommand({
          TableName: tables.vault,
          Item: {
            ...item,
            PK: { S: `wallet#${to[0]}` },
            SK: { S: sk(to[1], to[2]) },
            wallet: { S: to[0] },
            secret_name: { S: to[1] },
            version: { N: String(to[2]) }
          }
        })
      )
    )
  })

const dynaliteStore = (dir?: string) =>
  SecretStore.layerDynamoDb.pipe(
    Layer.provideMerge(Layer.merge(DynamoDb.layerEmbedded({ dir }), KeyProvider.layerMemory))
  )

describe("SecretStore on DynamoDB", () => {
  it.layer(dynaliteStore())((it) => {
    it.effect("items have the documented keys and envelope attributes, and no plaintext", () =>
      Effect.gen(function* () {
        const store = yield* SecretStore.SecretStore
        yield* store.put("codex", "openrouter/api-key", Redacted.make("sk-or-plaintext-canary"))
        const { client, tables } = yield* DynamoDb.DynamoDb
        const out = yield* Effect.promise(() =>
          client.send(
            new GetItemCommand({
              TableName: tables.vault,
              Key: { PK: { S: "wallet#codex" }, SK: { S: "secret#openrouter/api-key#v000000001" } }
            })
          )
        )
        const item = out.Item!
        assert.deepStrictEqual(Object.keys(item).sort(), [
          "PK",
          "SK",
          "content_encrypted",
          "content_nonce",
          "created_at",
          "key_id",
          "secret_name",
          "version",
          "wallet",
          "wrapped_dek"
        ])
        assert.strictEqual(item.content_nonce?.B?.length, 12)
        assert.notInclude(
          Buffer.from(item.content_encrypted!.B!).toString("latin1"),
          "sk-or-plaintext-canary"
        )
      })
    )

    it.effect(
      "a ciphertext copied to another wallet's, name's or version's key fails with SecretIntegrityError",
      () =>
        Effect.gen(function* () {
          const store = yield* SecretStore.SecretStore
          yield* store.put("alice", "token", Redacted.make("alice-secret"))
          yield* store.put("mallory", "token", Redacted.make("mallory-own"))
          yield* copyItem(["alice", "token", 1], ["mallory", "token", 2])
          yield* copyItem(["alice", "token", 1], ["alice", "other", 1])
          yield* copyItem(["alice", "token", 1], ["alice", "token", 2])
          for (const [wallet, name] of [
            ["mallory", "token"],
            ["alice", "other"],
            ["alice", "token"]
          ] as const) {
            const exit = yield* Effect.exit(store.get(wallet, name))
            assert.strictEqual(failureTag(exit), "SecretIntegrityError", `${wallet}/${name}`)
            assert.notInclude(JSON.stringify(exit), "alice-secret")
          }
          assert.strictEqual(Redacted.value((yield* store.get("alice", "token", 1)).value), "alice-secret")
        })
    )
  })

  it.effect(
    "durability: secrets written before the engine stops are all read after it starts on the same directory",
    () =>
      Effect.gen(function* () {
        const dir = mkdtempSync(join(tmpdir(), "aap-vault-durable-"))
        const keys = yield* Layer.build(KeyProvider.layerMemory)
        const store = (dir: string) =>
          SecretStore.layerDynamoDb.pipe(
            Layer.provide(Layer.merge(DynamoDb.layerEmbedded({ dir }), Layer.succeedContext(keys)))
          )
        const names = Array.from({ length: 40 }, (_, i) => `service-${i % 8}/key-${i}`)
        yield* Effect.gen(function* () {
          const s = yield* SecretStore.SecretStore
          for (const [i, name] of names.entries()) yield* s.put("durable", name, Redacted.make(`value-${i}`))
          yield* s.put("durable", names[0]!, Redacted.make("value-0-v2"))
          yield* s.delete("durable", names[1]!)
        }).pipe(Effect.provide(store(dir)))
        const read = yield* Effect.gen(function* () {
          const s = yield* SecretStore.SecretStore
          const values = yield* Effect.forEach(names.slice(2), (name) =>
            Effect.map(s.get("durable", name), (secret) => Redacted.value(secret.value))
          )
          return {
            values,
            first: yield* s.get("durable", names[0]!),
            deleted: failureTag(yield* Effect.exit(s.get("durable", names[1]!))),
            listed: (yield* s.list("durable")).length
          }
        }).pipe(Effect.provide(store(dir)))
        assert.deepStrictEqual(
          read.values,
          names.slice(2).map((_, i) => `value-${i + 2}`)
        )
        assert.deepStrictEqual([read.first.version, Redacted.value(read.first.value)], [2, "value-0-v2"])
        assert.strictEqual(read.deleted, "SecretNotFound")
        assert.strictEqual(read.listed, 39)
        rmSync(dir, { recursive: true, force: true })
      }).pipe(Effect.scoped)
  )
})
