/**
 * The broker as an OpenID Connect issuer for AWS `AssumeRoleWithWebIdentity` (Class A).
 *
 * The ES256 signing keys live ENCRYPTED IN THE VAULT, in the system wallet (`aap.system`, a name no
 * catalog wallet can take) under `oidc/signing-key`, as one JSON keyring: the newest key signs,
 * retired keys stay published in the JWKS until every token they signed has expired (ADR 0046).
 * `discovery` and `jwks` are plain data the broker serves at `/.well-known/openid-configuration`
 * and `/.well-known/jwks.json` (or publishes to a bucket when AWS cannot reach the broker).
 *
 * @since 0.1.0
 */
import * as Crypto from "node:crypto"
import { Clock, Config, Context, Data, Effect, Layer, Redacted, Ref, Schema } from "effect"
import * as Jose from "jose"
import { type SecretMissing, Secrets, type SecretsUnavailable } from "./Ports.js"

/** The audience AWS STS expects in web-identity tokens. */
export const STS_AUDIENCE = "sts.amazonaws.com"

/** The claim under which AWS reads session tags from a web-identity token. */
export const AWS_TAGS_CLAIM = "https://aws.amazon.com/tags"

/**
 * The vault wallet for broker-owned material. The vault accepts `.` in a wallet name; a catalog
 * wallet id cannot contain one, so no agent can ever be given this wallet (ADR 0046).
 */
export const SYSTEM_WALLET = "aap.system"

/** The vault name of the issuer keyring inside the system wallet. */
export const SIGNING_KEY_SECRET = "oidc/signing-key"

/** The signing keys could not be read, created or parsed. Never carries key material. */
export class OidcUnavailable extends Data.TaggedError("OidcUnavailable")<{ readonly reason: string }> {}

export interface OidcConfig {
  /** The issuer URL AWS knows (`AAP_OIDC_ISSUER`), `https://…` without a trailing slash. */
  readonly issuer: string
  /** Lifetime of each minted token (AWS only needs it at the moment of the STS call). */
  readonly tokenTtlSeconds: number
  /** How long a broker reuses the keyring it read from the vault before reading it again. */
  readonly cacheSeconds: number
  readonly systemWallet: string
}

export const defaults = { tokenTtlSeconds: 300, cacheSeconds: 60, systemWallet: SYSTEM_WALLET } as const

/** The claims that identify one delivery. */
export interface Subject {
  readonly agent: string
  readonly wallet: string
  readonly session: string
  /** Extra principal tags (the catalog's rendered `sessionTags`). */
  readonly extraTags?: Readonly<Record<string, string>>
}

export interface MintedToken {
  readonly token: Redacted.Redacted<string>
  readonly kid: string
  readonly issuedAt: number
  readonly expiresAt: number
}

/** `/.well-known/openid-configuration`: what AWS reads to find the JWKS. */
export interface DiscoveryDocument {
  readonly issuer: string
  readonly jwks_uri: string
  readonly response_types_supported: ReadonlyArray<string>
  readonly subject_types_supported: ReadonlyArray<string>
  readonly id_token_signing_alg_values_supported: ReadonlyArray<string>
  readonly claims_supported: ReadonlyArray<string>
}

export interface PublicJwks {
  readonly keys: ReadonlyArray<Jose.JWK>
}

export class OidcIssuer extends Context.Tag("@aap/agent-coordination/delivery/OidcIssuer")<
  OidcIssuer,
  {
    readonly issuer: string
    readonly mint: (subject: Subject) => Effect.Effect<MintedToken, OidcUnavailable>
    readonly jwks: Effect.Effect<PublicJwks, OidcUnavailable>
    readonly discovery: DiscoveryDocument
    /** Make a new key primary; the old one stays published until its last token expired. */
    readonly rotate: Effect.Effect<
      { readonly kid: string; readonly published: ReadonlyArray<string> },
      OidcUnavailable
    >
  }
>() {}

// ---------------------------------------------------------------------------------------------
// Keyring, as stored (encrypted) in the vault
// ---------------------------------------------------------------------------------------------

const PrivateJwk = Schema.Struct({
  kty: Schema.Literal("EC"),
  crv: Schema.Literal("P-256"),
  x: Schema.String,
  y: Schema.String,
  d: Schema.String
})

const StoredKey = Schema.Struct({
  kid: Schema.String,
  jwk: PrivateJwk,
  createdAt: Schema.Number,
  retiredAt: Schema.optional(Schema.Number)
})
type StoredKey = typeof StoredKey.Type

const Keyring = Schema.Struct({ v: Schema.Literal(1), keys: Schema.NonEmptyArray(StoredKey) })
type Keyring = typeof Keyring.Type

const decodeKeyring = Schema.decode(Schema.parseJson(Keyring))
const encodeKeyring = Schema.encode(Schema.parseJson(Keyring))

const newKey = (now: number): Effect.Effect<StoredKey> =>
  Effect.promise(async () => {
    const jwk = Crypto.generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "jwk" })
    const { kty, crv, x, y, d } = jwk
    if (kty !== "EC" || crv !== "P-256" || x === undefined || y === undefined || d === undefined) {
      throw new Error("unexpected JWK from node:crypto")
    }
    const kid = await Jose.calculateJwkThumbprint({ kty, crv, x, y })
    return { kid, jwk: { kty, crv, x, y, d }, createdAt: now }
  })

const publicJwk = (k: StoredKey): Jose.JWK => ({
  kty: k.jwk.kty,
  crv: k.jwk.crv,
  x: k.jwk.x,
  y: k.jwk.y,
  kid: k.kid,
  alg: "ES256",
  use: "sig"
})

/**
 * How long a retired key stays published: any token it signed must verify until it expires,
 * including tokens from brokers still using a cached keyring (cache + token lifetime + skew).
 */
export const retentionSeconds = (config: OidcConfig): number =>
  config.tokenTtlSeconds + config.cacheSeconds + 60

const isPublished = (config: OidcConfig, now: number) => (k: StoredKey) =>
  k.retiredAt === undefined || now < k.retiredAt + retentionSeconds(config)

/** The issuer as a layer over the vault. */
export const make = (config: OidcConfig): Effect.Effect<Context.Tag.Service<OidcIssuer>, never, Secrets> =>
  Effect.gen(function* () {
    const secrets = yield* Secrets
    const issuer = config.issuer.replace(/\/+$/, "")
    const cache = yield* Ref.make<{ readonly keyring: Keyring; readonly loadedAt: number } | undefined>(
      undefined
    )
    const nowSeconds = Effect.map(Clock.currentTimeMillis, (ms) => Math.floor(ms / 1000))

    const unavailable = (reason: string) => new OidcUnavailable({ reason })
    const mapVault = (e: SecretMissing | SecretsUnavailable) =>
      unavailable(e._tag === "SecretMissing" ? "issuer keyring missing" : `vault unavailable: ${e.reason}`)

    const store = (keyring: Keyring) =>
      encodeKeyring(keyring).pipe(
        Effect.orDie,
        Effect.flatMap((json) => secrets.put(config.systemWallet, SIGNING_KEY_SECRET, Redacted.make(json))),
        Effect.mapError(mapVault)
      )

    const read = secrets
      .get(config.systemWallet, SIGNING_KEY_SECRET)
      .pipe(
        Effect.flatMap((json) =>
          decodeKeyring(Redacted.value(json)).pipe(
            Effect.mapError(() => unavailable("issuer keyring unreadable"))
          )
        )
      )

    // First start: create the keyring, then read back whatever version won (two brokers may race).
    const loadOrCreate = read.pipe(
      Effect.catchTag("SecretMissing", () =>
        nowSeconds.pipe(
          Effect.flatMap(newKey),
          Effect.flatMap((key) => store({ v: 1, keys: [key] })),
          Effect.zipRight(read)
        )
      ),
      Effect.mapError((e) => (e._tag === "OidcUnavailable" ? e : mapVault(e)))
    )

    const keyring = Effect.gen(function* () {
      const now = yield* nowSeconds
      const cached = yield* Ref.get(cache)
      if (cached !== undefined && now - cached.loadedAt < config.cacheSeconds) return cached.keyring
      const loaded = yield* loadOrCreate
      yield* Ref.set(cache, { keyring: loaded, loadedAt: now })
      return loaded
    })

    const primary = (k: Keyring): StoredKey => k.keys.find((key) => key.retiredAt === undefined) ?? k.keys[0]

    const mint = (subject: Subject): Effect.Effect<MintedToken, OidcUnavailable> =>
      Effect.gen(function* () {
        const ring = yield* keyring
        const key = primary(ring)
        const now = yield* nowSeconds
        const tags: Record<string, ReadonlyArray<string>> = {}
        for (const [k, v] of Object.entries(subject.extraTags ?? {})) tags[k] = [v]
        tags.aap_wallet = [subject.wallet]
        tags.aap_agent = [subject.agent]
        tags.aap_session = [subject.session]
        const expiresAt = now + config.tokenTtlSeconds
        const token = yield* Effect.tryPromise({
          try: async () => {
            const signingKey = await Jose.importJWK(key.jwk, "ES256")
            return new Jose.SignJWT({
              [AWS_TAGS_CLAIM]: {
                principal_tags: tags,
                transitive_tag_keys: ["aap_wallet", "aap_agent", "aap_session"]
              }
            })
              .setProtectedHeader({ alg: "ES256", kid: key.kid, typ: "JWT" })
              .setIssuer(issuer)
              .setSubject(`agent:${subject.agent}`)
              .setAudience(STS_AUDIENCE)
              .setIssuedAt(now)
              .setNotBefore(now - 5)
              .setExpirationTime(expiresAt)
              .setJti(`${subject.session}.${Crypto.randomBytes(8).toString("hex")}`)
              .sign(signingKey)
          },
          catch: () => unavailable("signing failed")
        })
        return { token: Redacted.make(token), kid: key.kid, issuedAt: now, expiresAt }
      })

    const jwks = Effect.gen(function* () {
      const ring = yield* keyring
      const now = yield* nowSeconds
      return { keys: ring.keys.filter(isPublished(config, now)).map(publicJwk) }
    })

    const rotate = Effect.gen(function* () {
      const current = yield* loadOrCreate
      const now = yield* nowSeconds
      const fresh = yield* newKey(now)
      const kept = current.keys
        .map((k) => (k.retiredAt === undefined ? { ...k, retiredAt: now } : k))
        .filter(isPublished(config, now))
      const next: Keyring = { v: 1, keys: [fresh, ...kept] }
      yield* store(next)
      yield* Ref.set(cache, { keyring: next, loadedAt: now })
      return { kid: fresh.kid, published: next.keys.map((k) => k.kid) }
    })

    const discovery: DiscoveryDocument = {
      issuer,
      jwks_uri: `${issuer}/.well-known/jwks.json`,
      response_types_supported: ["id_token"],
      subject_types_supported: ["public"],
      id_token_signing_alg_values_supported: ["ES256"],
      claims_supported: ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", AWS_TAGS_CLAIM]
    }

    return OidcIssuer.of({ issuer, mint, jwks, discovery, rotate })
  })

export const layer = (
  config: Partial<OidcConfig> & Pick<OidcConfig, "issuer">
): Layer.Layer<OidcIssuer, never, Secrets> => Layer.effect(OidcIssuer, make({ ...defaults, ...config }))

/** `AAP_OIDC_ISSUER` (required, an https URL; http only for loopback). */
export const layerConfig: Layer.Layer<OidcIssuer, import("effect/ConfigError").ConfigError, Secrets> =
  Layer.unwrapEffect(
    Effect.map(
      Config.string("AAP_OIDC_ISSUER").pipe(
        Config.validate({
          message:
            "AAP_OIDC_ISSUER must be an https:// URL without query or fragment (http:// only for 127.0.0.1/localhost)",
          validation: (s) =>
            /^https:\/\/[^\s?#]+$/.test(s) ||
            /^http:\/\/(127\.0\.0\.1|localhost)(:[0-9]+)?(\/[^\s?#]*)?$/.test(s)
        })
      ),
      (issuer) => layer({ issuer })
    )
  )
