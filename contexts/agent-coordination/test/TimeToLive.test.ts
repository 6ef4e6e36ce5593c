import { DynamoDb } from "@aap/local-stack"
import { DescribeTimeToLiveCommand, DynamoDBClient, UpdateTimeToLiveCommand } from "@aws-sdk/client-dynamodb"
import { assert, describe, it } from "@effect/vitest"
import { mockClient } from "aws-sdk-client-mock"
import { Duration, Effect, Option } from "effect"
import * as CoordinationStore from "../src/CoordinationStore.js"

const withClient = (client: DynamoDBClient) =>
  Effect.provideService(DynamoDb.DynamoDb, {
    client,
    tables: DynamoDb.tables("prod"),
    endpoint: Option.none(),
    timeout: Duration.seconds(5)
  })

describe("CoordinationStore.enableTimeToLive (AWS, mocked)", () => {
  it.effect("enables TTL on the `ttl` attribute of <prefix>-coordination when it is off", () =>
    Effect.gen(function* () {
      const client = new DynamoDBClient({ region: "eu-central-1" })
      const mock = mockClient(client)
      mock.on(DescribeTimeToLiveCommand).resolves({ TimeToLiveDescription: { TimeToLiveStatus: "DISABLED" } })
      mock.on(UpdateTimeToLiveCommand).resolves({})
      yield* CoordinationStore.enableTimeToLive.pipe(withClient(client))
      assert.deepStrictEqual(mock.commandCalls(DescribeTimeToLiveCommand)[0]?.args[0].input, {
        TableName: "prod-coordination"
      })
      assert.deepStrictEqual(mock.commandCalls(UpdateTimeToLiveCommand)[0]?.args[0].input, {
        TableName: "prod-coordination",
        TimeToLiveSpecification: { AttributeName: "ttl", Enabled: true }
      })
    })
  )

  it.effect("does nothing when TTL is already enabled; maps failures to Unavailable", () =>
    Effect.gen(function* () {
      const client = new DynamoDBClient({ region: "eu-central-1" })
      const mock = mockClient(client)
      mock.on(DescribeTimeToLiveCommand).resolves({ TimeToLiveDescription: { TimeToLiveStatus: "ENABLED" } })
      yield* CoordinationStore.enableTimeToLive.pipe(withClient(client))
      assert.strictEqual(mock.commandCalls(UpdateTimeToLiveCommand).length, 0)

      mock.reset()
      mock
        .on(DescribeTimeToLiveCommand)
        .rejects(Object.assign(new Error("boom"), { name: "InternalServerError" }))
      const error = yield* Effect.flip(CoordinationStore.enableTimeToLive.pipe(withClient(client)))
      assert.strictEqual(error._tag, "Unavailable")
      assert.notInclude(error.message, "boom")
    })
  )
})
