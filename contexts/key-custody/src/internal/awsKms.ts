/**
 * AWS KMS adapter. SDK errors are mapped here, once, into the port's errors; no SDK message
 * crosses this edge.
 */
import {
  DecryptCommand,
  DescribeKeyCommand,
  GenerateDataKeyCommand,
  KMSClient,
  ReEncryptCommand,
  RotateKeyOnDemandCommand
} from "@aws-sdk/client-kms"
import { Effect, Either, Redacted, Schema } from "effect"
import {
  DecryptFailed,
  type InvalidKeyContext,
  KeyNotFound,
  type KeyProviderError,
  type KeyringLoadError,
  KeyringUnreadable,
  KmsUnavailable
} from "../KeyCustodyError.js"
import type { Description, EncryptionContext, KeyProviderShape, Rewrapped } from "../KeyProvider.js"
import { KEY_BYTES } from "./aead.js"
import { createExclusive, readDoc } from "./localFile.js"
import { checkContext } from "./validate.js"

type KmsError = KeyNotFound | DecryptFailed | KmsUnavailable

/** Map an SDK error (by its `name`) to the port's errors. */
export const mapKmsError =
  (keyId: string) =>
  (error: unknown): KmsError => {
    const name =
      typeof error === "object" && error !== null && "name" in error && typeof error.name === "string"
        ? error.name
        : ""
    switch (name) {
      case "NotFoundException":
        return new KeyNotFound({ keyId, reason: "unknown" })
      case "InvalidCiphertextException":
      case "IncorrectKeyException":
      case "InvalidKeyUsageException":
      case "ValidationException":
      case "InvalidArnException":
        return new DecryptFailed()
      case "DisabledException":
        return new KmsUnavailable({ reason: "key-disabled", keyId })
      case "KMSInvalidStateException":
        return new KmsUnavailable({ reason: "key-state", keyId })
      case "AccessDeniedException":
        return new KmsUnavailable({ reason: "access-denied", keyId })
      case "ThrottlingException":
      case "LimitExceededException":
        return new KmsUnavailable({ reason: "throttled", keyId })
      case "KMSInternalException":
      case "DependencyTimeoutException":
        return new KmsUnavailable({ reason: "internal", keyId })
      default:
        return new KmsUnavailable({ reason: "unreachable", keyId })
    }
  }

/** The encryption context sent to KMS for a data key. */
export const kmsContext = (context: EncryptionContext): Record<string, string> => ({
  wallet: context.wallet,
  purpose: context.purpose
})

/** The encryption context of the SystemKeys root secret. */
export const SYSTEM_ROOT_CONTEXT: Record<string, string> = { purpose: "system-root", aap: "v1" }

const SystemRootFile = Schema.Struct({
  format: Schema.Literal("aap-kms-system-root"),
  version: Schema.Literal(1),
  keyId: Schema.String,
  wrapped: Schema.String,
  createdAt: Schema.String
})
type SystemRootFile = typeof SystemRootFile.Type

const parseRoot = (text: string, file: string): Either.Either<SystemRootFile, KeyringUnreadable> => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return Either.left(
      new KeyringUnreadable({ path: file, reason: "the file is not valid JSON (truncated or corrupted)" })
    )
  }
  return Either.mapLeft(
    Schema.decodeUnknownEither(SystemRootFile)(json),
    () => new KeyringUnreadable({ path: file, reason: "the file is not an aap KMS system-root file" })
  )
}

const own = (bytes: Uint8Array): Uint8Array => {
  const copy = new Uint8Array(bytes)
  bytes.fill(0)
  return copy
}

export const makeAwsKms = (options: {
  readonly keyId: string
  readonly systemRootPath: string
  readonly region?: string
  readonly client?: KMSClient
}): Effect.Effect<
  { readonly provider: KeyProviderShape; readonly root: Redacted.Redacted<Uint8Array> },
  KeyringLoadError | KeyProviderError
> =>
  Effect.gen(function* () {
    const client =
      options.client ?? new KMSClient(options.region === undefined ? {} : { region: options.region })
    const send = <A>(run: (signal: AbortSignal) => Promise<A>, keyId: string): Effect.Effect<A, KmsError> =>
      Effect.tryPromise({
        try: (signal) => Promise.resolve().then(() => run(signal)),
        catch: mapKmsError(keyId)
      })
    let currentArn: string | undefined

    const generateDataKey: KeyProviderShape["generateDataKey"] = (context) =>
      Effect.flatMap(checkContext(context), () =>
        Effect.flatMap(
          send(
            (abortSignal) =>
              client.send(
                new GenerateDataKeyCommand({
                  KeyId: options.keyId,
                  KeySpec: "AES_256",
                  EncryptionContext: kmsContext(context)
                }),
                { abortSignal }
              ),
            options.keyId
          ),
          (out) => {
            if (
              out.Plaintext?.length !== KEY_BYTES ||
              out.CiphertextBlob === undefined ||
              out.KeyId === undefined
            ) {
              return Effect.fail(new KmsUnavailable({ reason: "internal", keyId: options.keyId }))
            }
            currentArn = out.KeyId
            return Effect.succeed({
              plaintext: Redacted.make(own(out.Plaintext)),
              wrapped: out.CiphertextBlob,
              keyId: out.KeyId
            })
          }
        )
      )

    const decryptDataKey: KeyProviderShape["decryptDataKey"] = (context, wrapped, keyId) =>
      Effect.flatMap(checkContext(context), () =>
        Effect.flatMap(
          send(
            (abortSignal) =>
              client.send(
                new DecryptCommand({
                  CiphertextBlob: wrapped,
                  KeyId: keyId,
                  EncryptionContext: kmsContext(context)
                }),
                { abortSignal }
              ),
            keyId
          ),
          (out) =>
            out.Plaintext?.length === KEY_BYTES
              ? Effect.succeed(Redacted.make(own(out.Plaintext)))
              : Effect.fail(new DecryptFailed())
        )
      )

    const rewrap: KeyProviderShape["rewrap"] = (context, wrapped, keyId) =>
      Effect.flatMap(checkContext(context), (): Effect.Effect<Rewrapped, KmsError> => {
        // KMS keeps every backing key of a rotated KMS key; a DEK needs re-wrapping only when
        // the configured key changed (e.g. migration to a new KMS key).
        if (keyId === options.keyId || keyId === currentArn) {
          return Effect.succeed({ wrapped, keyId, rewrapped: false })
        }
        return Effect.flatMap(
          send(
            (abortSignal) =>
              client.send(
                new ReEncryptCommand({
                  CiphertextBlob: wrapped,
                  SourceKeyId: keyId,
                  SourceEncryptionContext: kmsContext(context),
                  DestinationKeyId: options.keyId,
                  DestinationEncryptionContext: kmsContext(context)
                }),
                { abortSignal }
              ),
            keyId
          ),
          (out) =>
            out.CiphertextBlob === undefined || out.KeyId === undefined
              ? Effect.fail(new KmsUnavailable({ reason: "internal", keyId: options.keyId }))
              : Effect.succeed({ wrapped: out.CiphertextBlob, keyId: out.KeyId, rewrapped: true })
        )
      })

    const describe = (): Effect.Effect<Description, KmsError> =>
      Effect.map(
        send(
          (abortSignal) => client.send(new DescribeKeyCommand({ KeyId: options.keyId }), { abortSignal }),
          options.keyId
        ),
        (out) => {
          const arn = out.KeyMetadata?.Arn ?? options.keyId
          currentArn = arn
          const created = out.KeyMetadata?.CreationDate
          return {
            provider: "aws-kms" as const,
            location: options.keyId,
            primaryKeyId: arn,
            masterKeys: [
              created === undefined
                ? { keyId: arn, primary: true }
                : { keyId: arn, primary: true, createdAt: created.toISOString() }
            ],
            ...(out.KeyMetadata?.KeyState === undefined ? {} : { keyState: out.KeyMetadata.KeyState })
          }
        }
      )

    const rotate = (): Effect.Effect<Description, KmsError> =>
      Effect.flatMap(
        send(
          (abortSignal) =>
            client.send(new RotateKeyOnDemandCommand({ KeyId: options.keyId }), { abortSignal }),
          options.keyId
        ),
        () => describe()
      )

    const root = yield* loadSystemRoot(
      options.systemRootPath,
      options.keyId,
      (run, keyId) => send(run, keyId),
      client
    )
    return { provider: { generateDataKey, decryptDataKey, rewrap, rotate, describe }, root }
  })

const loadSystemRoot = (
  file: string,
  keyId: string,
  send: <A>(run: (signal: AbortSignal) => Promise<A>, keyId: string) => Effect.Effect<A, KmsError>,
  client: KMSClient
): Effect.Effect<Redacted.Redacted<Uint8Array>, KeyringLoadError | KmsError | InvalidKeyContext> =>
  Effect.gen(function* () {
    const present = yield* Effect.promise(() =>
      import("node:fs/promises").then((fs) =>
        fs.stat(file).then(
          () => true,
          () => false
        )
      )
    )
    if (!present) {
      const out = yield* send(
        (abortSignal) =>
          client.send(
            new GenerateDataKeyCommand({
              KeyId: keyId,
              KeySpec: "AES_256",
              EncryptionContext: SYSTEM_ROOT_CONTEXT
            }),
            { abortSignal }
          ),
        keyId
      )
      if (
        out.Plaintext?.length !== KEY_BYTES ||
        out.CiphertextBlob === undefined ||
        out.KeyId === undefined
      ) {
        return yield* new KmsUnavailable({ reason: "internal", keyId })
      }
      const record: SystemRootFile = {
        format: "aap-kms-system-root",
        version: 1,
        keyId: out.KeyId,
        wrapped: Buffer.from(out.CiphertextBlob).toString("base64"),
        createdAt: new Date().toISOString()
      }
      const created = yield* createExclusive(file, `${JSON.stringify(record, null, 2)}\n`)
      if (created) return Redacted.make(own(out.Plaintext))
      out.Plaintext.fill(0) // another process won the race: use its root
    }
    const record = yield* readDoc(file, parseRoot)
    const out = yield* send(
      (abortSignal) =>
        client.send(
          new DecryptCommand({
            CiphertextBlob: Buffer.from(record.wrapped, "base64"),
            KeyId: record.keyId,
            EncryptionContext: SYSTEM_ROOT_CONTEXT
          }),
          { abortSignal }
        ),
      record.keyId
    )
    if (out.Plaintext?.length !== KEY_BYTES) return yield* new DecryptFailed()
    return Redacted.make(own(out.Plaintext))
  })
