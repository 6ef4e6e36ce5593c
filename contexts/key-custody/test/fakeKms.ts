/**
 * A simulated AWS KMS behind aws-sdk-client-mock, on one KMSClient instance (not a module
 * mock). It keeps real semantics where our adapter depends on them: ciphertext blobs name
 * their key, the encryption context is authenticated, a wrong KeyId is IncorrectKeyException,
 * a wrong context or altered blob is InvalidCiphertextException, rotation adds backing keys.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto"
import {
  DecryptCommand,
  type DecryptCommandInput,
  DescribeKeyCommand,
  type DescribeKeyCommandInput,
  GenerateDataKeyCommand,
  type GenerateDataKeyCommandInput,
  IncorrectKeyException,
  InvalidCiphertextException,
  KMSClient,
  NotFoundException,
  ReEncryptCommand,
  type ReEncryptCommandInput,
  RotateKeyOnDemandCommand,
  type RotateKeyOnDemandCommandInput
} from "@aws-sdk/client-kms"
import { mockClient } from "aws-sdk-client-mock"

export const REGION = "eu-central-1"
export const ACCOUNT = "123456789012"
export const arnOf = (id: string) => `arn:aws:kms:${REGION}:${ACCOUNT}:key/${id}`
export const KEY_1 = arnOf("11111111-1111-1111-1111-111111111111")
export const KEY_2 = arnOf("22222222-2222-2222-2222-222222222222")
export const ALIAS = "alias/aap-test"

const meta = { $metadata: {} }
const aadOf = (context: Record<string, string> | undefined) =>
  Buffer.from(
    JSON.stringify(Object.entries(context ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    "utf8"
  )

export const newClient = () =>
  new KMSClient({
    region: REGION,
    credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "test-secret" }
  })

export const fakeKms = (client: KMSClient = newClient()) => {
  const keys = [KEY_1, KEY_2]
  const backing = new Map<string, Buffer[]>(keys.map((k) => [k, [randomBytes(32)]]))
  const aliases = new Map<string, string>([[ALIAS, KEY_1]])
  const resolve = (keyId: string | undefined): string => {
    const arn = aliases.get(keyId ?? "") ?? (keyId?.startsWith("arn:") ? keyId : arnOf(keyId ?? ""))
    if (!backing.has(arn)) throw new NotFoundException({ message: `Key '${keyId}' does not exist`, ...meta })
    return arn
  }
  const encrypt = (arn: string, plaintext: Uint8Array, context: Record<string, string> | undefined) => {
    const versions = backing.get(arn)!
    const version = versions.length - 1
    const nonce = randomBytes(12)
    const header = Buffer.from([keys.indexOf(arn), version])
    const cipher = createCipheriv("aes-256-gcm", versions[version]!, nonce)
    cipher.setAAD(Buffer.concat([header, aadOf(context)]))
    const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()])
    return new Uint8Array(Buffer.concat([header, nonce, body]))
  }
  const decrypt = (
    blob: Uint8Array | undefined,
    keyId: string | undefined,
    context: Record<string, string> | undefined
  ) => {
    const b = Buffer.from(blob ?? new Uint8Array())
    const arn = keys[b[0] ?? 255]
    const key = arn === undefined ? undefined : backing.get(arn)?.[b[1] ?? 255]
    if (arn === undefined || key === undefined || b.length < 2 + 12 + 16) {
      throw new InvalidCiphertextException({ message: "invalid ciphertext", ...meta })
    }
    if (keyId !== undefined && resolve(keyId) !== arn) {
      throw new IncorrectKeyException({
        message: "The key ID in the request does not identify the key",
        ...meta
      })
    }
    try {
      const decipher = createDecipheriv("aes-256-gcm", key, b.subarray(2, 14))
      decipher.setAAD(Buffer.concat([b.subarray(0, 2), aadOf(context)]))
      decipher.setAuthTag(b.subarray(b.length - 16))
      return {
        arn,
        plaintext: new Uint8Array(
          Buffer.concat([decipher.update(b.subarray(14, b.length - 16)), decipher.final()])
        )
      }
    } catch {
      throw new InvalidCiphertextException({ message: "invalid ciphertext", ...meta })
    }
  }

  const mock = mockClient(client)
  mock.on(GenerateDataKeyCommand).callsFake(async (input: GenerateDataKeyCommandInput) => {
    const arn = resolve(input.KeyId)
    const plaintext = new Uint8Array(randomBytes(32))
    return {
      KeyId: arn,
      Plaintext: plaintext,
      CiphertextBlob: encrypt(arn, plaintext, input.EncryptionContext)
    }
  })
  mock.on(DecryptCommand).callsFake(async (input: DecryptCommandInput) => {
    const { arn, plaintext } = decrypt(input.CiphertextBlob, input.KeyId, input.EncryptionContext)
    return { KeyId: arn, Plaintext: plaintext, EncryptionAlgorithm: "SYMMETRIC_DEFAULT" }
  })
  mock.on(ReEncryptCommand).callsFake(async (input: ReEncryptCommandInput) => {
    const { arn, plaintext } = decrypt(input.CiphertextBlob, input.SourceKeyId, input.SourceEncryptionContext)
    const destination = resolve(input.DestinationKeyId)
    return {
      SourceKeyId: arn,
      KeyId: destination,
      CiphertextBlob: encrypt(destination, plaintext, input.DestinationEncryptionContext)
    }
  })
  mock.on(RotateKeyOnDemandCommand).callsFake(async (input: RotateKeyOnDemandCommandInput) => {
    const arn = resolve(input.KeyId)
    backing.get(arn)!.push(randomBytes(32))
    return { KeyId: arn }
  })
  mock.on(DescribeKeyCommand).callsFake(async (input: DescribeKeyCommandInput) => {
    const arn = resolve(input.KeyId)
    return {
      KeyMetadata: {
        KeyId: arn.split("/")[1],
        Arn: arn,
        KeyState: "Enabled",
        CreationDate: new Date("2026-01-01")
      }
    }
  })
  return {
    client,
    mock,
    /** Point the alias at another key (a migration to a new KMS key). */
    retarget: (arn: string) => aliases.set(ALIAS, arn),
    backingVersions: (arn: string) => backing.get(arn)!.length
  }
}
