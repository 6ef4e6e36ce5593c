import * as fs from "node:fs/promises"
import * as path from "node:path"
import {
  DecryptCommand,
  DependencyTimeoutException,
  DescribeKeyCommand,
  DisabledException,
  GenerateDataKeyCommand,
  IncorrectKeyException,
  InvalidCiphertextException,
  KMSInternalException,
  KMSInvalidStateException,
  NotFoundException,
  ReEncryptCommand,
  RotateKeyOnDemandCommand
} from "@aws-sdk/client-kms"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Redacted } from "effect"
import { Envelope, type KeyCustodyError, KeyProvider, SystemKeys } from "../src/index.js"
import { conformance } from "./conformance.js"
import { ALIAS, fakeKms, KEY_1, KEY_2 } from "./fakeKms.js"
import { tempDir, toHex } from "./helpers.js"

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined

const kmsLayer = (kms: ReturnType<typeof fakeKms>, dir: string, keyId = ALIAS) =>
  KeyProvider.layerAwsKms({
    keyId,
    systemRootPath: path.join(dir, "keys", "kms-system-root.json"),
    client: kms.client
  })

conformance(
  "AWS KMS (simulated KMS on a mocked KMSClient instance)",
  Layer.unwrapScoped(Effect.map(tempDir, (dir) => kmsLayer(fakeKms(), dir))),
  { rotates: false }
)

const ctx = { wallet: "codex", purpose: "vault" }
const address = { wallet: "codex", name: "openrouter/api-key", version: 1 }

describe("AwsKms adapter", () => {
  it.scoped("sends GenerateDataKey and Decrypt with the exact KeyId, KeySpec and EncryptionContext", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const kms = fakeKms()
      const env = yield* Effect.provide(
        Envelope.seal(address, Redacted.make("sk-canary")),
        kmsLayer(kms, dir)
      )
      const generate = kms.mock.commandCalls(GenerateDataKeyCommand).map((c) => c.args[0].input)
      // First call: the SystemKeys root; second: the secret's DEK.
      assert.deepStrictEqual(generate, [
        { KeyId: ALIAS, KeySpec: "AES_256", EncryptionContext: { purpose: "system-root", aap: "v1" } },
        { KeyId: ALIAS, KeySpec: "AES_256", EncryptionContext: { wallet: "codex", purpose: "vault" } }
      ])
      assert.strictEqual(env.keyId, KEY_1)
      kms.mock.resetHistory()
      const text = yield* Effect.provide(Envelope.openText(address, env), kmsLayer(kms, dir))
      assert.strictEqual(Redacted.value(text), "sk-canary")
      const decrypt = kms.mock.commandCalls(DecryptCommand).map((c) => c.args[0].input)
      assert.strictEqual(decrypt.length, 2) // system root at start, then the DEK
      assert.deepStrictEqual(decrypt[0]!.EncryptionContext, { purpose: "system-root", aap: "v1" })
      assert.strictEqual(decrypt[0]!.KeyId, KEY_1)
      assert.deepStrictEqual(decrypt[1], {
        CiphertextBlob: env.wrappedDek,
        KeyId: KEY_1,
        EncryptionContext: { wallet: "codex", purpose: "vault" }
      })
      assert.strictEqual(kms.mock.commandCalls(GenerateDataKeyCommand).length, 0)
    })
  )

  it.scoped(
    "keeps the SystemKeys root as a KMS-wrapped file (0600), decrypted once per start, stable across starts",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const kms = fakeKms()
        const fingerprint = Effect.gen(function* () {
          const keys = yield* SystemKeys.SystemKeys
          return [
            yield* keys.hmac(SystemKeys.Purpose.AuditHmac, "v"),
            toHex((yield* keys.signingKey(SystemKeys.Purpose.AuditCheckpoint)).publicKeyRaw)
          ]
        })
        const first = yield* Effect.provide(fingerprint, kmsLayer(kms, dir))
        const file = path.join(dir, "keys", "kms-system-root.json")
        const st = yield* Effect.promise(() => fs.stat(file))
        assert.strictEqual(st.mode & 0o777, 0o600)
        const record = JSON.parse(yield* Effect.promise(() => fs.readFile(file, "utf8")))
        assert.strictEqual(record.format, "aap-kms-system-root")
        assert.strictEqual(record.keyId, KEY_1)
        const second = yield* Effect.provide(fingerprint, kmsLayer(kms, dir))
        assert.deepStrictEqual(second, first)
        assert.strictEqual(kms.mock.commandCalls(GenerateDataKeyCommand).length, 1)
      })
  )

  it.scoped(
    "rotate calls RotateKeyOnDemand; DEKs from before still decrypt; rewrap is a no-op for the current key",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const kms = fakeKms()
        yield* Effect.gen(function* () {
          const kp = yield* KeyProvider.KeyProvider
          const old = yield* kp.generateDataKey(ctx)
          const described = yield* kp.rotate()
          assert.deepStrictEqual(
            kms.mock.commandCalls(RotateKeyOnDemandCommand).map((c) => c.args[0].input),
            [{ KeyId: ALIAS }]
          )
          assert.strictEqual(kms.backingVersions(KEY_1), 2)
          assert.strictEqual(described.provider, "aws-kms")
          assert.strictEqual(described.primaryKeyId, KEY_1)
          assert.strictEqual(described.keyState, "Enabled")
          const back = yield* kp.decryptDataKey(ctx, old.wrapped, old.keyId)
          assert.strictEqual(toHex(Redacted.value(back)), toHex(Redacted.value(old.plaintext)))
          const same = yield* kp.rewrap(ctx, old.wrapped, old.keyId)
          assert.isFalse(same.rewrapped)
          assert.strictEqual(kms.mock.commandCalls(ReEncryptCommand).length, 0)
        }).pipe(Effect.provide(kmsLayer(kms, dir)))
      })
  )

  it.scoped(
    "rewrap of a DEK under another KMS key calls ReEncrypt with both contexts and the configured key",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const kms = fakeKms()
        const old = yield* Effect.provide(
          Effect.flatMap(KeyProvider.KeyProvider, (kp) => kp.generateDataKey(ctx)),
          kmsLayer(kms, dir, KEY_2)
        )
        assert.strictEqual(old.keyId, KEY_2)
        const moved = yield* Effect.provide(
          Effect.flatMap(KeyProvider.KeyProvider, (kp) => kp.rewrap(ctx, old.wrapped, old.keyId)),
          kmsLayer(kms, dir, ALIAS)
        )
        assert.isTrue(moved.rewrapped)
        assert.strictEqual(moved.keyId, KEY_1)
        assert.deepStrictEqual(
          kms.mock.commandCalls(ReEncryptCommand).map((c) => c.args[0].input),
          [
            {
              CiphertextBlob: old.wrapped,
              SourceKeyId: KEY_2,
              SourceEncryptionContext: { wallet: "codex", purpose: "vault" },
              DestinationKeyId: ALIAS,
              DestinationEncryptionContext: { wallet: "codex", purpose: "vault" }
            }
          ]
        )
        const back = yield* Effect.provide(
          Effect.flatMap(KeyProvider.KeyProvider, (kp) => kp.decryptDataKey(ctx, moved.wrapped, moved.keyId)),
          kmsLayer(kms, dir)
        )
        assert.strictEqual(toHex(Redacted.value(back)), toHex(Redacted.value(old.plaintext)))
      })
  )

  const SDK_CANARY = "sdk-message-canary 10.9.8.7"
  const meta = { $metadata: {} }
  const mapping: ReadonlyArray<[string, () => Error, string, string | undefined]> = [
    [
      "NotFoundException",
      () => new NotFoundException({ message: SDK_CANARY, ...meta }),
      "KeyNotFound",
      "unknown"
    ],
    [
      "InvalidCiphertextException",
      () => new InvalidCiphertextException({ message: SDK_CANARY, ...meta }),
      "DecryptFailed",
      undefined
    ],
    [
      "IncorrectKeyException",
      () => new IncorrectKeyException({ message: SDK_CANARY, ...meta }),
      "DecryptFailed",
      undefined
    ],
    [
      "DisabledException",
      () => new DisabledException({ message: SDK_CANARY, ...meta }),
      "KmsUnavailable",
      "key-disabled"
    ],
    [
      "KMSInvalidStateException",
      () => new KMSInvalidStateException({ message: SDK_CANARY, ...meta }),
      "KmsUnavailable",
      "key-state"
    ],
    [
      "AccessDeniedException",
      () => Object.assign(new Error(SDK_CANARY), { name: "AccessDeniedException" }),
      "KmsUnavailable",
      "access-denied"
    ],
    [
      "KMSInternalException",
      () => new KMSInternalException({ message: SDK_CANARY, ...meta }),
      "KmsUnavailable",
      "internal"
    ],
    [
      "DependencyTimeoutException",
      () => new DependencyTimeoutException({ message: SDK_CANARY, ...meta }),
      "KmsUnavailable",
      "internal"
    ],
    [
      "ThrottlingException",
      () => Object.assign(new Error(SDK_CANARY), { name: "ThrottlingException" }),
      "KmsUnavailable",
      "throttled"
    ],
    [
      "a network error",
      () => Object.assign(new Error(`connect ECONNREFUSED ${SDK_CANARY}`), { code: "ECONNREFUSED" }),
      "KmsUnavailable",
      "unreachable"
    ]
  ]

  for (const [name, make, tag, reason] of mapping) {
    it.scoped(
      `maps ${name} to ${tag}${reason === undefined ? "" : ` (${reason})`} without the SDK's message`,
      () =>
        Effect.gen(function* () {
          const dir = yield* tempDir
          const kms = fakeKms()
          const kp = Context.get(yield* Layer.build(kmsLayer(kms, dir)), KeyProvider.KeyProvider)
          const dk = yield* kp.generateDataKey(ctx)
          kms.mock.on(DecryptCommand).rejects(make())
          kms.mock.on(GenerateDataKeyCommand).rejects(make())
          kms.mock.on(DescribeKeyCommand).rejects(make())
          const runs: ReadonlyArray<Effect.Effect<unknown, KeyCustodyError.KeyProviderError>> = [
            kp.decryptDataKey(ctx, dk.wrapped, dk.keyId),
            kp.generateDataKey(ctx),
            kp.describe()
          ]
          for (const run of runs) {
            const error = failureOf(yield* Effect.exit(run))
            assert.strictEqual(error?._tag, tag)
            if (reason !== undefined && error !== undefined && "reason" in error)
              assert.strictEqual(error.reason, reason)
            assert.notInclude(`${error?.message} ${JSON.stringify(error)}`, SDK_CANARY)
          }
          // A start needs Decrypt of the SystemKeys root: it fails the same way (fail closed).
          const startError = failureOf(yield* Effect.exit(Layer.build(kmsLayer(kms, dir))))
          assert.strictEqual(startError?._tag, tag)
        })
    )
  }
})

// Opt-in live test against a real KMS key: registered only when AAP_LIVE_KMS_KEY_ID is set
// (needs AWS credentials and kms:GenerateDataKey/Decrypt/ReEncrypt*/DescribeKey on the key).
// Without the variable the suite is absent, not skipped. Rotation is not exercised live.
const liveKeyId = process.env.AAP_LIVE_KMS_KEY_ID
if (liveKeyId !== undefined && liveKeyId !== "") {
  conformance(
    `AWS KMS live (${liveKeyId})`,
    Layer.unwrapScoped(
      Effect.map(tempDir, (dir) =>
        KeyProvider.layerAwsKms({
          keyId: liveKeyId,
          systemRootPath: path.join(dir, "keys", "kms-system-root.json"),
          ...(process.env.AWS_REGION === undefined ? {} : { region: process.env.AWS_REGION })
        })
      )
    ),
    { rotates: false }
  )
}
