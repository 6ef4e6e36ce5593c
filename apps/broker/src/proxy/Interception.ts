/**
 * Opt-in TLS interception for the forward-proxy mode (issue 12, ADR 0082): the operator's own
 * CA (`AAP_PROXY_CA_CERT`, `AAP_PROXY_CA_KEY`) signs leaf certificates for the capability's
 * upstream host, minted on first use and cached in memory, so the broker can terminate a
 * CONNECT to that host and run every inner request through the reverse-proxy pipeline.
 *
 * The CA private key is a secret: read at start (the file must be mode 0600 or stricter), kept
 * as PKCS#8 bytes behind `Redacted` and imported as a non-extractable WebCrypto signing key,
 * never logged and never quoted in an error. X.509 encoding is
 * `@peculiar/x509` (ADR 0082), signing is node's WebCrypto.
 *
 * @since 0.1.0
 */
import "reflect-metadata"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Tls from "node:tls"
import * as X509 from "@peculiar/x509"
import { Config, ConfigError, Either, Option, Redacted } from "effect"

// @peculiar/x509 signs and hashes through WebCrypto; node's implementation is the provider.
X509.cryptoProvider.set(Crypto.webcrypto)

/** What the operator configured, validated at start. */
export interface OperatorCa {
  /** The CA certificate (public): what agents trust, what `aap exec` writes to a temp file. */
  readonly certPem: string
  /** The CA private key, PKCS#8 DER. Never log it. */
  readonly keyPkcs8: Redacted.Redacted<Uint8Array>
  readonly keyType: "rsa" | "ec-p256" | "ec-p384"
  readonly notAfter: Date
}

const invalid = (message: string) => ConfigError.InvalidData([], message)

/** Reads and checks the CA certificate file (a CA, not expired). */
const readCert = (file: string): Either.Either<{ pem: string; cert: Crypto.X509Certificate }, string> => {
  let pem: string
  try {
    pem = Fs.readFileSync(file, "utf8")
  } catch (e) {
    return Either.left(`cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`)
  }
  let cert: Crypto.X509Certificate
  try {
    cert = new Crypto.X509Certificate(pem)
  } catch {
    return Either.left(`${file} holds no PEM X.509 certificate`)
  }
  if (!cert.ca) return Either.left(`${file} is not a CA certificate (basicConstraints CA:TRUE is required)`)
  if (new Date(cert.validTo).getTime() <= Date.now())
    return Either.left(`${file}: the CA certificate expired on ${cert.validTo}`)
  return Either.right({ pem: cert.toString(), cert })
}

/** Reads and checks the CA key file: mode 0600 (no group or world bits), a supported key, matching the certificate. */
export const loadOperatorCa = (
  certFile: string,
  keyFile: string
): Either.Either<OperatorCa, ReadonlyArray<readonly [string, string]>> => {
  const problems: Array<readonly [string, string]> = []
  const cert = readCert(certFile)
  if (Either.isLeft(cert)) problems.push(["AAP_PROXY_CA_CERT", cert.left])
  let key: Crypto.KeyObject | undefined
  let keyBytes: Buffer | undefined
  try {
    const stat = Fs.statSync(keyFile)
    if ((stat.mode & 0o077) !== 0) {
      problems.push([
        "AAP_PROXY_CA_KEY",
        `${keyFile} is readable by group or others (mode ${(stat.mode & 0o777).toString(8)}); the CA key must be mode 0600: chmod 600 ${keyFile}`
      ])
    } else {
      keyBytes = Fs.readFileSync(keyFile)
    }
  } catch (e) {
    problems.push([
      "AAP_PROXY_CA_KEY",
      `cannot read ${keyFile}: ${e instanceof Error ? e.message : String(e)}`
    ])
  }
  if (keyBytes !== undefined) {
    try {
      key = Crypto.createPrivateKey(keyBytes)
    } catch {
      // Not OpenSSL's message: it could quote the file's content.
      problems.push(["AAP_PROXY_CA_KEY", `${keyFile} holds no unencrypted PEM private key`])
    } finally {
      keyBytes.fill(0)
    }
  }
  let keyType: OperatorCa["keyType"] | undefined
  if (key !== undefined) {
    const curve = key.asymmetricKeyDetails?.namedCurve
    keyType =
      key.asymmetricKeyType === "rsa"
        ? "rsa"
        : key.asymmetricKeyType === "ec" && curve === "prime256v1"
          ? "ec-p256"
          : key.asymmetricKeyType === "ec" && curve === "secp384r1"
            ? "ec-p384"
            : undefined
    if (keyType === undefined) {
      problems.push([
        "AAP_PROXY_CA_KEY",
        `unsupported CA key type ${key.asymmetricKeyType ?? "?"} ${curve ?? ""}; expected RSA, EC P-256 or EC P-384`.trim()
      ])
    } else if (Either.isRight(cert) && !cert.right.cert.checkPrivateKey(key)) {
      problems.push(["AAP_PROXY_CA_KEY", `${keyFile} is not the private key of ${certFile}`])
    }
  }
  if (problems.length > 0 || key === undefined || keyType === undefined || Either.isLeft(cert)) {
    return Either.left(problems)
  }
  return Either.right({
    certPem: cert.right.pem,
    keyPkcs8: Redacted.make(new Uint8Array(key.export({ type: "pkcs8", format: "der" }))),
    keyType,
    notAfter: new Date(cert.right.cert.validTo)
  })
}

/**
 * `AAP_PROXY_CA_CERT` + `AAP_PROXY_CA_KEY`: both or neither; every problem named. `None`:
 * interception is off (CONNECT to an upstream host is refused).
 */
export const config: Config.Config<Option.Option<OperatorCa>> = Config.all({
  cert: Config.option(Config.string("AAP_PROXY_CA_CERT")),
  key: Config.option(Config.string("AAP_PROXY_CA_KEY"))
}).pipe(
  Config.mapOrFail(({ cert, key }) => {
    if (Option.isNone(cert) && Option.isNone(key)) return Either.right(Option.none())
    if (Option.isNone(cert) || Option.isNone(key)) {
      const missing = Option.isNone(cert) ? "AAP_PROXY_CA_CERT" : "AAP_PROXY_CA_KEY"
      return Either.left(
        ConfigError.InvalidData(
          [missing],
          "TLS interception needs both AAP_PROXY_CA_CERT and AAP_PROXY_CA_KEY; set both or neither"
        )
      )
    }
    const loaded = loadOperatorCa(cert.value, key.value)
    if (Either.isRight(loaded)) return Either.right(Option.some(loaded.right))
    const [first, ...rest] = loaded.left.map(([name, message]) => ConfigError.InvalidData([name], message))
    return Either.left(
      rest.reduce<ConfigError.ConfigError>(
        (acc, e) => ConfigError.And(acc, e),
        first ?? invalid("invalid CA")
      )
    )
  })
)

const LEAF_HOURS = 24
const MAX_CACHED = 1024

const algorithms = (type: OperatorCa["keyType"]) =>
  type === "rsa"
    ? {
        import: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
        sign: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }
      }
    : type === "ec-p256"
      ? { import: { name: "ECDSA", namedCurve: "P-256" }, sign: { name: "ECDSA", hash: "SHA-256" } }
      : { import: { name: "ECDSA", namedCurve: "P-384" }, sign: { name: "ECDSA", hash: "SHA-384" } }

/** Leaf certificates for upstream hosts, signed by the operator CA, cached in memory. */
export interface Minter {
  /** A TLS server context for `hostname` (a DNS name or an IP literal). */
  readonly contextFor: (hostname: string) => Promise<Tls.SecureContext>
  /** The PEM leaf certificate last minted for `hostname` (tests, diagnostics). */
  readonly certificateFor: (hostname: string) => Promise<string>
}

interface Leaf {
  readonly pem: string
  readonly context: Tls.SecureContext
  /** Mint again after this (epoch ms): an hour before the leaf expires. */
  readonly renewAt: number
}

export const makeMinter = async (ca: OperatorCa): Promise<Minter> => {
  const subtle = Crypto.webcrypto.subtle
  const alg = algorithms(ca.keyType)
  const caKey = await subtle.importKey("pkcs8", Redacted.value(ca.keyPkcs8), alg.import, false, ["sign"])
  const caCert = new X509.X509Certificate(ca.certPem)
  const caSki = caCert.getExtension(X509.SubjectKeyIdentifierExtension)
  // One key pair for every leaf of this process (never persisted); a certificate per host.
  const leafKeys = await subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])
  const leafKeyPem = Crypto.KeyObject.from(leafKeys.privateKey).export({
    type: "pkcs8",
    format: "pem"
  }) as string
  const cache = new Map<string, Promise<Leaf>>()

  const mint = async (hostname: string): Promise<Leaf> => {
    const now = Date.now()
    const notAfter = new Date(Math.min(now + LEAF_HOURS * 3_600_000, ca.notAfter.getTime()))
    const serial = Crypto.randomBytes(16)
    serial[0] = (serial[0] as number) & 0x7f
    const ip = /^[0-9.]+$|:/.test(hostname)
    const cert = await X509.X509CertificateGenerator.create({
      serialNumber: serial.toString("hex"),
      subject: `CN=${hostname.replace(/[,+="\\<>;#]/g, "")}`,
      issuer: caCert.subject,
      notBefore: new Date(now - 5 * 60_000),
      notAfter,
      signingAlgorithm: alg.sign,
      publicKey: leafKeys.publicKey,
      signingKey: caKey,
      extensions: [
        new X509.BasicConstraintsExtension(false, undefined, true),
        new X509.KeyUsagesExtension(X509.KeyUsageFlags.digitalSignature, true),
        new X509.ExtendedKeyUsageExtension([X509.ExtendedKeyUsage.serverAuth]),
        new X509.SubjectAlternativeNameExtension([{ type: ip ? "ip" : "dns", value: hostname }]),
        ...(caSki === null ? [] : [new X509.AuthorityKeyIdentifierExtension(caSki.keyId)]),
        await X509.SubjectKeyIdentifierExtension.create(leafKeys.publicKey)
      ]
    })
    const pem = cert.toString("pem")
    return {
      pem,
      context: Tls.createSecureContext({ key: leafKeyPem, cert: `${pem}\n${ca.certPem}` }),
      renewAt: notAfter.getTime() - 3_600_000
    }
  }

  const entry = (hostname: string): Promise<Leaf> => {
    const key = hostname.toLowerCase()
    const hit = cache.get(key)
    if (hit !== undefined) {
      return hit.then((e) => {
        if (e.renewAt > Date.now()) return e
        cache.delete(key)
        return entry(key)
      })
    }
    if (cache.size >= MAX_CACHED) {
      const oldest = cache.keys().next()
      if (!oldest.done) cache.delete(oldest.value)
    }
    const minted = mint(key)
    minted.catch(() => cache.delete(key))
    cache.set(key, minted)
    return minted
  }

  return {
    contextFor: (hostname) => entry(hostname).then((e) => e.context),
    certificateFor: (hostname) => entry(hostname).then((e) => e.pem)
  }
}
