/**
 * The SSH wire encoding (RFC 4251 §5) for the few types an OpenSSH certificate needs, and the
 * key formats the broker reads. Pure functions over `Buffer`; no I/O.
 */
import { Buffer } from "node:buffer"

export const uint32 = (n: number): Buffer => {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n >>> 0)
  return b
}

export const uint64 = (n: bigint): Buffer => {
  const b = Buffer.alloc(8)
  b.writeBigUInt64BE(BigInt.asUintN(64, n))
  return b
}

export const string = (value: Buffer | string): Buffer => {
  const bytes = typeof value === "string" ? Buffer.from(value, "utf8") : value
  return Buffer.concat([uint32(bytes.length), bytes])
}

/** A reader over an SSH wire buffer; throws `WireError` on truncation. */
export class WireError extends Error {}

export class Reader {
  private offset = 0
  constructor(private readonly buf: Buffer) {}
  get done(): boolean {
    return this.offset === this.buf.length
  }
  uint32(): number {
    if (this.offset + 4 > this.buf.length) throw new WireError("truncated uint32")
    const n = this.buf.readUInt32BE(this.offset)
    this.offset += 4
    return n
  }
  uint64(): bigint {
    if (this.offset + 8 > this.buf.length) throw new WireError("truncated uint64")
    const n = this.buf.readBigUInt64BE(this.offset)
    this.offset += 8
    return n
  }
  bytes(n: number): Buffer {
    if (this.offset + n > this.buf.length) throw new WireError("truncated bytes")
    const b = this.buf.subarray(this.offset, this.offset + n)
    this.offset += n
    return b
  }
  string(): Buffer {
    return this.bytes(this.uint32())
  }
  text(): string {
    return this.string().toString("utf8")
  }
}

export const ED25519 = "ssh-ed25519"
export const ED25519_CERT = "ssh-ed25519-cert-v01@openssh.com"

/** The public key blob of an Ed25519 key: string "ssh-ed25519", string pk(32). */
export const ed25519PublicBlob = (pk: Buffer): Buffer => Buffer.concat([string(ED25519), string(pk)])

/** The 32 raw public-key bytes of a line such as `ssh-ed25519 AAAA... comment`. */
export const parseEd25519PublicKeyLine = (line: string): Buffer => {
  const parts = line.trim().split(/\s+/)
  if (parts.length < 2) throw new WireError("expected '<type> <base64> [comment]'")
  const [type, b64] = parts as [string, string]
  if (type !== ED25519) throw new WireError(`unsupported key type ${JSON.stringify(type.slice(0, 64))}`)
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new WireError("the key is not base64")
  const r = new Reader(Buffer.from(b64, "base64"))
  if (r.text() !== ED25519) throw new WireError("the key blob does not match its type")
  const pk = r.string()
  if (pk.length !== 32 || !r.done) throw new WireError("an Ed25519 key is 32 bytes")
  return Buffer.from(pk)
}

const OPENSSH_MAGIC = Buffer.from("openssh-key-v1\0", "latin1")

/**
 * The 32-byte seed of an unencrypted OpenSSH Ed25519 private key
 * (`-----BEGIN OPENSSH PRIVATE KEY-----`, PROTOCOL.key). Encrypted keys are refused: the vault
 * already encrypts the key at rest and the broker has no passphrase to offer.
 */
export const parseOpenSshEd25519PrivateKey = (pem: string): { seed: Buffer; pk: Buffer } => {
  const body = pem
    .replace(/-----BEGIN OPENSSH PRIVATE KEY-----/, "")
    .replace(/-----END OPENSSH PRIVATE KEY-----/, "")
    .replace(/\s+/g, "")
  const buf = Buffer.from(body, "base64")
  if (!buf.subarray(0, OPENSSH_MAGIC.length).equals(OPENSSH_MAGIC)) throw new WireError("not an OpenSSH key")
  const r = new Reader(buf.subarray(OPENSSH_MAGIC.length))
  const cipher = r.text()
  const kdf = r.text()
  r.string() // kdf options
  if (cipher !== "none" || kdf !== "none") throw new WireError("encrypted OpenSSH keys are not supported")
  if (r.uint32() !== 1) throw new WireError("expected exactly one key")
  r.string() // public key blob
  const priv = new Reader(r.string())
  const check1 = priv.uint32()
  const check2 = priv.uint32()
  if (check1 !== check2) throw new WireError("check integers differ")
  if (priv.text() !== ED25519) throw new WireError("not an Ed25519 key")
  const pk = priv.string()
  const sk = priv.string()
  if (pk.length !== 32 || sk.length !== 64) throw new WireError("malformed Ed25519 key")
  return { seed: Buffer.from(sk.subarray(0, 32)), pk: Buffer.from(pk) }
}
