/**
 * Items edited directly in the DynamoDB table (with the SDK, as someone with table access
 * would) are rejected, not trusted.
 */

import { DynamoDb } from "@aap/local-stack"
import { GetItemCommand, PutItemCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb"
import { assert, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as TestServices from "effect/TestServices"
import * as CoordinationStore from "../src/CoordinationStore.js"
import * as Identities from "../src/Identities.js"
import * as IdentityRepository from "../src/IdentityRepository.js"
import * as LinkCode from "../src/LinkCode.js"
import * as SessionRepository from "../src/SessionRepository.js"
import * as Sessions from "../src/Sessions.js"
import { alice, codex, engine, services } from "./support/fixtures.js"

const named = Layer.effect(
  DynamoDb.DynamoDb,
  Effect.map(DynamoDb.DynamoDb, (shared) => ({ ...shared, tables: DynamoDb.tables(`tamper${process.pid}`) }))
).pipe(Layer.provide(engine))

const store = Layer.effect(
  CoordinationStore.CoordinationStore,
  TestServices.provideLive(
    Effect.flatMap(CoordinationStore.CoordinationStore, Effect.succeed).pipe(
      Effect.provide(CoordinationStore.layerDynamoDb)
    )
  )
)

/** `UPDATE <table> SET data.<field> = <value> WHERE PK = pk`, straight through the SDK. */
const setField = (
  pk: string,
  sk: string,
  field: string,
  value: { S: string } | { N: string } | { BOOL: boolean }
) =>
  Effect.flatMap(DynamoDb.DynamoDb, ({ client, tables }) =>
    Effect.promise(() =>
      client.send(
        new UpdateItemCommand({
          TableName: tables.coordination,
          Key: { PK: { S: pk }, SK: { S: sk } },
          UpdateExpression: "SET #d.#f = :v",
          ExpressionAttributeNames: { "#d": "data", "#f": field },
          ExpressionAttributeValues: { ":v": value }
        })
      )
    )
  )

/** A copy of the stored item now, and a function that puts that copy back (a rollback). */
const snapshot = (pk: string, sk: string) =>
  Effect.flatMap(DynamoDb.DynamoDb, ({ client, tables }) =>
    Effect.promise(async () => {
      const key = { PK: { S: pk }, SK: { S: sk } }
      const item = (await client.send(new GetItemCommand({ TableName: tables.coordination, Key: key }))).Item
      assert.isDefined(item, `no item ${pk}`)
      return Effect.promise(() =>
        client.send(new PutItemCommand({ TableName: tables.coordination, Item: item ?? {} }))
      )
    })
  )

layer(named, { timeout: "60 seconds" })("Tampering with the table", (it) => {
  it.effect("a pending session promoted to active by hand is Tampered everywhere", () =>
    Effect.gen(function* () {
      const sessions = yield* Sessions.Sessions
      const s = yield* sessions.request(codex, { capability: "ssh-platform-host" })
      yield* setField(SessionRepository.pk(s.id), "session", "status", { S: "active" })
      for (const attempt of [
        sessions.get(codex, s.id),
        sessions.get(alice, s.id),
        sessions.approve(alice, s.id),
        sessions.revoke(codex, s.id)
      ]) {
        assert.strictEqual((yield* Effect.flip(attempt))._tag, "Tampered")
      }
      assert.strictEqual((yield* Effect.flip(sessions.list(alice, { agent: "codex" })))._tag, "Tampered")
    }).pipe(Effect.provide(services(store)))
  )

  it.effect("a lengthened TTL is Tampered", () =>
    Effect.gen(function* () {
      const sessions = yield* Sessions.Sessions
      const s = yield* sessions.request(codex, { capability: "openrouter-chat" })
      yield* setField(SessionRepository.pk(s.id), "session", "expiresAt", { S: "2099-01-01T00:00:00.000Z" })
      assert.strictEqual((yield* Effect.flip(sessions.get(codex, s.id)))._tag, "Tampered")
    }).pipe(Effect.provide(services(store)))
  )

  it.effect("a token re-pointed at another agent, or un-revoked, authenticates nobody", () =>
    Effect.gen(function* () {
      const identities = yield* Identities.Identities
      const minted = yield* identities.issueToken(alice, { type: "agent", id: "codex" })
      yield* setField(IdentityRepository.tokenPk(minted.hash), "token", "principal", { S: "claude" })
      assert.strictEqual((yield* Effect.flip(identities.authenticate(minted.token)))._tag, "Unauthorized")
      const op = yield* identities.issueToken(alice, { type: "operator", id: "alice" })
      yield* setField(IdentityRepository.tokenPk(op.hash), "token", "type", { S: "agent" })
      assert.strictEqual((yield* Effect.flip(identities.authenticate(op.token)))._tag, "Unauthorized")
    }).pipe(Effect.provide(services(store)))
  )

  it.effect("a revoked session's earlier, validly MACed item put back is Tampered (rollback)", () =>
    Effect.gen(function* () {
      const sessions = yield* Sessions.Sessions
      const s = yield* sessions.request(codex, { capability: "openrouter-chat" })
      const restore = yield* snapshot(SessionRepository.pk(s.id), "session")
      yield* sessions.revoke(alice, s.id)
      yield* restore
      const refused = yield* Effect.flip(sessions.get(codex, s.id))
      assert.strictEqual(refused._tag, "Tampered")
      assert.include(refused.message, "rolled back")
      // approving, revoking and delivering all read it the same (consistent) way
      assert.strictEqual((yield* Effect.flip(sessions.revoke(codex, s.id)))._tag, "Tampered")
    }).pipe(Effect.provide(services(store)))
  )

  it.effect("a revoked token's earlier item put back authenticates nobody (rollback)", () =>
    Effect.gen(function* () {
      const identities = yield* Identities.Identities
      const minted = yield* identities.issueToken(alice, { type: "agent", id: "codex" })
      const restore = yield* snapshot(IdentityRepository.tokenPk(minted.hash), "token")
      yield* identities.revokeToken(minted.token)
      yield* restore
      assert.strictEqual((yield* Effect.flip(identities.authenticate(minted.token)))._tag, "Unauthorized")
    }).pipe(Effect.provide(services(store)))
  )

  it.effect("a redeemed link code's earlier item put back does not redeem again (rollback)", () =>
    Effect.gen(function* () {
      const identities = yield* Identities.Identities
      const issued = yield* identities.issueLinkCode(alice, "codex")
      const restore = yield* snapshot(IdentityRepository.linkCodePk(LinkCode.hash(issued.code)), "link-code")
      yield* identities.redeemLinkCode(issued.code)
      yield* restore
      assert.strictEqual((yield* Effect.flip(identities.redeemLinkCode(issued.code)))._tag, "Unauthorized")
    }).pipe(Effect.provide(services(store)))
  )

  it.effect("a link code given a new expiry is refused like a wrong one", () =>
    Effect.gen(function* () {
      const identities = yield* Identities.Identities
      const issued = yield* identities.issueLinkCode(alice, "codex")
      yield* setField(IdentityRepository.linkCodePk(LinkCode.hash(issued.code)), "link-code", "expiresAt", {
        S: "2099-01-01T00:00:00.000Z"
      })
      assert.strictEqual((yield* Effect.flip(identities.redeemLinkCode(issued.code)))._tag, "Unauthorized")
    }).pipe(Effect.provide(services(store)))
  )
})
