import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Option } from "effect"
import * as BrokerConfig from "../src/BrokerConfig.js"

const withEnv = (env: Record<string, string>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("BrokerConfig", () => {
  it.effect("defaults match DESIGN §13", () =>
    Effect.gen(function* () {
      const c = yield* BrokerConfig.load.pipe(withEnv({}))
      assert.strictEqual(c.home, "./.aap")
      assert.deepStrictEqual(c.listen, { host: "127.0.0.1", port: 8787 })
      assert.strictEqual(c.catalogPath, "examples/catalog.yaml")
      assert.isTrue(Option.isNone(c.dynamodbEndpoint))
      assert.isTrue(Option.isNone(c.kmsKeyId))
      assert.strictEqual(c.auditSink, "jsonl")
      assert.strictEqual(c.tablePrefix, "aap")
      assert.strictEqual(Duration.toMillis(c.requestTimeout), 10_000)
    })
  )

  it.effect("accepts a full production configuration", () =>
    Effect.gen(function* () {
      const c = yield* BrokerConfig.load.pipe(
        withEnv({
          AAP_HOME: "/var/lib/aap",
          AAP_LISTEN: "0.0.0.0:9000",
          AAP_CATALOG: "/etc/aap/catalog.yaml",
          AAP_DYNAMODB_ENDPOINT: "https://dynamodb.eu-central-1.amazonaws.com/",
          AAP_TABLE_PREFIX: "prod-aap",
          AAP_KMS_KEY_ID: "alias/aap-umk",
          AAP_AUDIT_SINK: "dynamodb",
          AAP_VAULT_BUCKET: "aap-vault",
          AAP_MEMORY_BUCKET: "aap-memory",
          AAP_AUDIT_BUCKET: "aap-audit",
          AAP_S3_ENDPOINT: "https://s3.eu-central-1.amazonaws.com",
          AAP_OIDC_ISSUER: "https://aap.example.com",
          AWS_REGION: "eu-central-1",
          AAP_MAX_BODY_BYTES: "1024",
          AAP_REQUEST_TIMEOUT: "2s"
        })
      )
      assert.deepStrictEqual(c.listen, { host: "0.0.0.0", port: 9000 })
      assert.deepStrictEqual(c.dynamodbEndpoint, Option.some("https://dynamodb.eu-central-1.amazonaws.com"))
      assert.deepStrictEqual(c.kmsKeyId, Option.some("alias/aap-umk"))
      assert.strictEqual(c.auditSink, "dynamodb")
      assert.strictEqual(c.maxBodyBytes, 1024)
      assert.strictEqual(Duration.toMillis(c.requestTimeout), 2000)
      assert.strictEqual(BrokerConfig.issuerUrl(c), "https://aap.example.com")
    })
  )

  it.effect("reports every bad value at once, each named with what was expected", () =>
    Effect.gen(function* () {
      const error = yield* BrokerConfig.load.pipe(
        withEnv({
          AAP_LISTEN: "localhost",
          AAP_DYNAMODB_ENDPOINT: "not a url",
          AAP_TABLE_PREFIX: "bad prefix!",
          AAP_KMS_KEY_ID: "nope",
          AAP_AUDIT_SINK: "syslog",
          AAP_VAULT_BUCKET: "Bad_Bucket",
          AWS_REGION: "mars",
          AAP_MAX_BODY_BYTES: "-5",
          AAP_REQUEST_TIMEOUT: "soon"
        }),
        Effect.flip
      )
      const names = error.problems.map((p) => p.name).sort()
      assert.deepStrictEqual(names, [
        "AAP_AUDIT_SINK",
        "AAP_DYNAMODB_ENDPOINT",
        "AAP_KMS_KEY_ID",
        "AAP_LISTEN",
        "AAP_MAX_BODY_BYTES",
        "AAP_REQUEST_TIMEOUT",
        "AAP_TABLE_PREFIX",
        "AAP_VAULT_BUCKET",
        "AWS_REGION"
      ])
      const message = error.message
      assert.include(message, "9 problems")
      assert.include(message, "AAP_LISTEN: expected HOST:PORT")
      assert.include(message, "AAP_AUDIT_SINK: expected one of jsonl, dynamodb")
      assert.include(message, "AWS_REGION: expected an AWS region")
      assert.notInclude(message, "    at ")
    })
  )

  it.effect("a port above 65535 is refused", () =>
    Effect.gen(function* () {
      const error = yield* BrokerConfig.load.pipe(withEnv({ AAP_LISTEN: "127.0.0.1:70000" }), Effect.flip)
      assert.strictEqual(error.problems.length, 1)
      assert.strictEqual(error.problems[0]?.name, "AAP_LISTEN")
    })
  )
})
