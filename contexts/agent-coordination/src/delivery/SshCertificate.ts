/**
 * OpenSSH user certificates (`ssh-ed25519-cert-v01@openssh.com`, PROTOCOL.certkeys) signed by
 * an Ed25519 certificate authority whose private key lives in the vault. The wire format is
 * written here over `node:crypto` (ADR 0047); OpenSSH itself is the test oracle.
 *
 * @since 0.1.0
 */
import { Buffer } from "node:buffer"
import * as Crypto from "node:crypto"
import { Data, Effect, Redacted } from "effect"
import * as Wire from "./internal/sshWire.js"

/** The agent's public key is not an OpenSSH Ed25519 public key line. */
export class InvalidPublicKey extends Data.TaggedError("InvalidPublicKey")<{ readonly reason: string }> {}

/** The CA material from the vault is not an Ed25519 private key (PKCS#8 PEM or unencrypted OpenSSH). */
export class InvalidCaKey extends Data.TaggedError("InvalidCaKey")<{ readonly reason: string }> {}

/** A loaded certificate authority. The private key never leaves this object. */
export interface CertificateAuthority {
  readonly publicKeyLine: string
  readonly sign: (data: Buffer) => Buffer
  readonly publicBlob: Buffer
}

/** Parse the CA private key (PKCS#8 PEM `BEGIN PRIVATE KEY` or `BEGIN OPENSSH PRIVATE KEY`). */
export const loadAuthority = (
  material: Redacted.Redacted<string>
): Effect.Effect<CertificateAuthority, InvalidCaKey> =>
  Effect.try({
    try: () => {
      const text = Redacted.value(material)
      let key: Crypto.KeyObject
      if (text.includes("BEGIN OPENSSH PRIVATE KEY")) {
        const { seed, pk } = Wire.parseOpenSshEd25519PrivateKey(text)
        key = Crypto.createPrivateKey({
          key: { kty: "OKP", crv: "Ed25519", d: seed.toString("base64url"), x: pk.toString("base64url") },
          format: "jwk"
        })
      } else {
        key = Crypto.createPrivateKey({ key: text, format: "pem" })
      }
      if (key.asymmetricKeyType !== "ed25519") throw new Wire.WireError("the CA key must be Ed25519")
      const x = Crypto.createPublicKey(key).export({ format: "jwk" }).x
      if (typeof x !== "string") throw new Wire.WireError("no public key")
      const publicBlob = Wire.ed25519PublicBlob(Buffer.from(x, "base64url"))
      return {
        publicBlob,
        publicKeyLine: `${Wire.ED25519} ${publicBlob.toString("base64")} aap-ca`,
        sign: (data: Buffer) => Crypto.sign(null, data, key)
      }
    },
    // Never echo the material or the parser's message (it may quote input) — only a fixed reason.
    catch: (e) =>
      new InvalidCaKey({
        reason: e instanceof Wire.WireError ? e.message : "the CA key is not a readable Ed25519 private key"
      })
  })

/** Generate a fresh CA key as PKCS#8 PEM (for bootstrap and tests). */
export const generateAuthorityKey = (): Redacted.Redacted<string> =>
  Redacted.make(
    Crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString()
  )

/** What to certify. Times are whole seconds since the epoch. */
export interface CertificateRequest {
  readonly publicKey: string
  readonly keyId: string
  readonly principals: ReadonlyArray<string>
  readonly validAfter: number
  readonly validBefore: number
  readonly serial: bigint
  readonly extensions: ReadonlyArray<string>
  readonly criticalOptions?: Readonly<Record<string, string>>
}

/** A signed certificate: the OpenSSH line (`<type> <base64> <comment>`) and its fields. */
export interface Certificate {
  readonly line: string
  readonly keyId: string
  readonly serial: bigint
  readonly principals: ReadonlyArray<string>
  readonly validAfter: number
  readonly validBefore: number
}

/** The default permissions: an interactive shell and nothing else (no forwarding). */
export const defaultExtensions: ReadonlyArray<string> = ["permit-pty"]

const USER_CERT = 1

/** Parse the agent's public key line, or fail with `InvalidPublicKey`. */
export const parsePublicKey = (line: string): Effect.Effect<Buffer, InvalidPublicKey> =>
  Effect.try({
    try: () => Wire.parseEd25519PublicKeyLine(line),
    catch: (e) => new InvalidPublicKey({ reason: e instanceof Wire.WireError ? e.message : "unreadable key" })
  })

const options = (entries: ReadonlyArray<readonly [string, Buffer]>): Buffer =>
  Buffer.concat(
    [...entries]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .flatMap(([name, data]) => [Wire.string(name), Wire.string(data)])
  )

/** Sign a user certificate for `request.publicKey` with `ca`. */
export const sign = (
  ca: CertificateAuthority,
  request: CertificateRequest
): Effect.Effect<Certificate, InvalidPublicKey> =>
  Effect.map(parsePublicKey(request.publicKey), (pk) => {
    const body = Buffer.concat([
      Wire.string(Wire.ED25519_CERT),
      Wire.string(Crypto.randomBytes(32)),
      Wire.string(pk),
      Wire.uint64(request.serial),
      Wire.uint32(USER_CERT),
      Wire.string(request.keyId),
      Wire.string(Buffer.concat(request.principals.map((p) => Wire.string(p)))),
      Wire.uint64(BigInt(request.validAfter)),
      Wire.uint64(BigInt(request.validBefore)),
      Wire.string(
        options(Object.entries(request.criticalOptions ?? {}).map(([k, v]) => [k, Wire.string(v)] as const))
      ),
      Wire.string(options(request.extensions.map((e) => [e, Buffer.alloc(0)] as const))),
      Wire.string(Buffer.alloc(0)),
      Wire.string(ca.publicBlob)
    ])
    const signature = Buffer.concat([Wire.string(Wire.ED25519), Wire.string(ca.sign(body))])
    const blob = Buffer.concat([body, Wire.string(signature)])
    return {
      line: `${Wire.ED25519_CERT} ${blob.toString("base64")} ${request.keyId}`,
      keyId: request.keyId,
      serial: request.serial,
      principals: request.principals,
      validAfter: request.validAfter,
      validBefore: request.validBefore
    }
  })

/** A random serial in [1, 2^63) so certificates of one CA can be told apart in sshd logs. */
export const randomSerial = (): bigint => (Crypto.randomBytes(8).readBigUInt64BE() >> 1n) | 1n
