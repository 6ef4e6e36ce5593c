import { createHmac, createPrivateKey, createPublicKey, hkdfSync, sign, verify } from "node:crypto"
import { Effect, Redacted } from "effect"
import type { SigningKey, SystemKeysShape } from "../SystemKeys.js"
import { isPurpose } from "./validate.js"

/** HKDF-SHA256 salt for every system key (ADR 0012). */
export const SYSTEM_SALT = "aap:v1:system-keys"
/** PKCS#8 DER prefix of an Ed25519 private key; the 32-byte seed follows. */
const ED25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex")

export const deriveSystemKey = (root: Uint8Array, kind: "hmac-sha256" | "ed25519", purpose: string): Buffer =>
  Buffer.from(
    hkdfSync("sha256", root, Buffer.from(SYSTEM_SALT, "utf8"), Buffer.from(`${kind}:${purpose}`, "utf8"), 32)
  )

const checkPurpose = (purpose: string): void => {
  if (!isPurpose(purpose)) {
    // Purposes are constants in code; an invalid one is a programming error (a defect).
    throw new Error(`invalid system key purpose (expected 1-64 characters from [a-z0-9._-])`)
  }
}

const toBytes = (data: Uint8Array | string): Uint8Array =>
  typeof data === "string" ? Buffer.from(data, "utf8") : data

export const ed25519PublicKeyRaw = (publicKey: ReturnType<typeof createPublicKey>): Uint8Array => {
  const jwk = publicKey.export({ format: "jwk" })
  return new Uint8Array(Buffer.from(jwk.x ?? "", "base64url"))
}

export const makeSystemKeys = (rootSecret: Redacted.Redacted<Uint8Array>): SystemKeysShape => {
  const root = Redacted.value(rootSecret)
  const hmacKeys = new Map<string, Buffer>()
  const signing = new Map<string, SigningKey>()
  const hmacKeyOf = (purpose: string): Buffer => {
    checkPurpose(purpose)
    let key = hmacKeys.get(purpose)
    if (key === undefined) {
      key = deriveSystemKey(root, "hmac-sha256", purpose)
      hmacKeys.set(purpose, key)
    }
    return key
  }
  const signingOf = (purpose: string): SigningKey => {
    checkPurpose(purpose)
    let key = signing.get(purpose)
    if (key === undefined) {
      const seed = deriveSystemKey(root, "ed25519", purpose)
      const privateKey = createPrivateKey({
        key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]),
        format: "der",
        type: "pkcs8"
      })
      seed.fill(0)
      const publicKey = createPublicKey(privateKey)
      const raw = ed25519PublicKeyRaw(publicKey)
      const keyId = `ed25519:${Buffer.from(raw).toString("hex").slice(0, 16)}`
      key = {
        purpose,
        keyId,
        publicKey,
        publicKeyRaw: raw,
        sign: (data) => new Uint8Array(sign(null, toBytes(data), privateKey)),
        verify: (data, signature) => {
          try {
            return verify(null, toBytes(data), publicKey, signature)
          } catch {
            return false
          }
        }
      }
      signing.set(purpose, key)
    }
    return key
  }
  return {
    hmac: (purpose, data) =>
      Effect.sync(() => createHmac("sha256", hmacKeyOf(purpose)).update(toBytes(data)).digest("hex")),
    hmacKey: (purpose) => Effect.sync(() => Redacted.make(new Uint8Array(hmacKeyOf(purpose)))),
    signingKey: (purpose) => Effect.sync(() => signingOf(purpose))
  }
}
