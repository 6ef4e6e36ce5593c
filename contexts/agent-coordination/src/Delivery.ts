/**
 * Credential delivery (DESIGN §9, issue 7): turning an active session into a credential.
 *
 * THE INVARIANT. No credential leaves `deliver` unless
 * 1. the session exists and belongs to the calling agent (another agent's session is the same
 *    `NotFound` as a missing one),
 * 2. it is `active` and its deadline has not passed (checked against `Clock`, not trusted from
 *    the store),
 * 3. the catalog in force NOW still lets this agent use the capability with this wallet, and
 * 4. `credential.issued` is durably in the audit log — an append that fails or times out is
 *    `AuditUnavailable` and the credential is discarded (a provisioned upstream key is revoked).
 * Checks 1–3 and every input check (public key, STS window, policy rendering) run before the
 * first vault read or upstream call, so a refused request touches neither.
 *
 * Secrets are `Redacted` from the vault read to the JSON body; they are never logged, never in
 * an error, and appear in the audit record only as the HMAC the audit log computes.
 *
 * @since 0.1.0
 */
import { type AuditError, AuditLog } from "@aap/audit"
import { type Catalog, SessionPolicy } from "@aap/catalog"
import { Config, Context, DateTime, Effect, Either, Layer, Option, Redacted } from "effect"
import { CurrentCatalog } from "./CurrentCatalog.js"
import {
  type Credential,
  CredentialUnavailable,
  CredentialWindowTooShort,
  DeliveredCredential,
  type DeliverRequest,
  InvalidPublicKey,
  ProxyOnly,
  SessionNotActive,
  UpstreamRefused
} from "./delivery/Api.js"
import * as AwsCredentials from "./delivery/AwsCredentials.js"
import { OidcIssuer } from "./delivery/OidcIssuer.js"
import {
  type SecretMissing,
  Secrets,
  type SecretsUnavailable,
  Sessions,
  type SessionView
} from "./delivery/Ports.js"
import { type ProvisionedKey, ProvisionedKeys } from "./delivery/ProvisionedKeys.js"
import { Provisioner } from "./delivery/Provisioner.js"
import * as SshCertificate from "./delivery/SshCertificate.js"
import { Expired, NotFound, RequestDenied, Tampered, Unavailable } from "./Errors.js"
import type * as Principal from "./Principal.js"
import { EgressProxy } from "./proxy/EgressProxy.js"

export type DeliverError =
  | NotFound
  | Expired
  | SessionNotActive
  | RequestDenied
  | CredentialWindowTooShort
  | ProxyOnly
  | InvalidPublicKey
  | UpstreamRefused
  | CredentialUnavailable
  | AuditError.AuditUnavailable
  | Unavailable
  | Tampered

/** The outcome of revoking a session's provisioned upstream keys. */
export interface ReleaseReport {
  readonly revoked: number
  readonly failed: number
}

export interface DeliveryShape {
  /** The only way a credential leaves the broker. `caller` is the authenticated agent. */
  readonly deliver: (
    caller: Principal.Agent,
    sessionId: string,
    request: DeliverRequest
  ) => Effect.Effect<DeliveredCredential, DeliverError>
  /** Revoke every provisioned key of a session (on revoke/expiry; idempotent). */
  readonly release: (sessionId: string) => Effect.Effect<ReleaseReport, Unavailable | Tampered>
  /** Revoke provisioned keys whose session deadline passed (the worker's sweep). */
  readonly releaseDue: (limit: number) => Effect.Effect<ReleaseReport, Unavailable | Tampered>
}

export class Delivery extends Context.Tag("@aap/agent-coordination/Delivery")<Delivery, DeliveryShape>() {}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

export interface DeliveryConfigShape {
  /** Values for `${vault_bucket}`, `${memory_bucket}`, `${audit_bucket}` in aws-sts resources. */
  readonly buckets: {
    readonly vault_bucket?: string | undefined
    readonly memory_bucket?: string | undefined
    readonly audit_bucket?: string | undefined
  }
  /** Upper bound for `DurationSeconds` (the roles' `MaxSessionDuration`; AWS default 3600). */
  readonly stsMaxDurationSeconds: number
  /** SSH certificates start this long before now (client/server clock skew). */
  readonly sshClockSkewSeconds: number
}

export class DeliveryConfig extends Context.Tag("@aap/agent-coordination/DeliveryConfig")<
  DeliveryConfig,
  DeliveryConfigShape
>() {}

export const defaultConfig: DeliveryConfigShape = {
  buckets: {},
  stsMaxDurationSeconds: 3600,
  sshClockSkewSeconds: 60
}

export const layerConfigWith = (config: Partial<DeliveryConfigShape>): Layer.Layer<DeliveryConfig> =>
  Layer.succeed(DeliveryConfig, { ...defaultConfig, ...config })

/** `AAP_VAULT_BUCKET`, `AAP_MEMORY_BUCKET`, `AAP_AUDIT_BUCKET`, `AAP_STS_MAX_DURATION_SECONDS`. */
export const layerConfig: Layer.Layer<DeliveryConfig, import("effect/ConfigError").ConfigError> =
  Layer.effect(
    DeliveryConfig,
    Effect.gen(function* () {
      const opt = (name: string) => Config.option(Config.string(name)).pipe(Config.map(Option.getOrUndefined))
      const [vault_bucket, memory_bucket, audit_bucket] = yield* Config.all([
        opt("AAP_VAULT_BUCKET"),
        opt("AAP_MEMORY_BUCKET"),
        opt("AAP_AUDIT_BUCKET")
      ])
      const stsMaxDurationSeconds = yield* Config.integer("AAP_STS_MAX_DURATION_SECONDS").pipe(
        Config.withDefault(3600),
        Config.validate({
          message: "AAP_STS_MAX_DURATION_SECONDS must be between 900 and 43200",
          validation: (n) => n >= 900 && n <= 43_200
        })
      )
      return {
        buckets: { vault_bucket, memory_bucket, audit_bucket },
        stsMaxDurationSeconds,
        sshClockSkewSeconds: 60
      }
    })
  )

// ---------------------------------------------------------------------------------------------
// Implementation
// ---------------------------------------------------------------------------------------------

interface Issued {
  readonly credential: Credential
  readonly env: Record<string, Redacted.Redacted<string>>
  /** Non-secret facts for the audit record. */
  readonly details: Record<string, string | number | boolean>
  /** The secret itself, HMAC'd by the audit log (lets an operator match a leaked value). */
  readonly sensitive: Redacted.Redacted<string> | undefined
  /** Undo when the audit append fails (revoke a minted upstream key). */
  readonly compensate: Effect.Effect<void>
}

/** A refusal, with the reason written to the audit record (which the caller never sees). */
interface Refusal {
  readonly error: DeliverError
  readonly auditReason: string
  readonly outcome: "denied" | "error"
}

const refuse = (
  error: DeliverError,
  auditReason: string,
  outcome: "denied" | "error" = "denied"
): Refusal => ({
  error,
  auditReason,
  outcome
})

const notFound = (sessionId: string) =>
  new NotFound({ message: `session ${JSON.stringify(sessionId.slice(0, 80))} not found` })

const vaultError = (e: SecretMissing | SecretsUnavailable): Refusal =>
  e._tag === "SecretMissing"
    ? refuse(
        new CredentialUnavailable({
          message: `the capability's secret ${JSON.stringify(e.name)} is not in the session's wallet; an operator must store it`,
          reason: "secret-missing"
        }),
        "secret-missing",
        "error"
      )
    : e.reason === "SecretIntegrityError"
      ? // the stored envelope does not open under its own address: edited or moved in the
        // table, not an outage (threat model, finding 5)
        refuse(
          new Tampered({
            message: "the capability's secret failed its integrity check (the stored item was altered)",
            kind: "secret"
          }),
          "secret-tampered",
          "error"
        )
      : refuse(
          new CredentialUnavailable({ message: "the vault is unavailable", reason: "vault-unavailable" }),
          "vault-unavailable",
          "error"
        )

const epochSeconds = (dt: DateTime.Utc) => Math.floor(DateTime.toEpochMillis(dt) / 1000)

export const make: Effect.Effect<
  DeliveryShape,
  never,
  | Sessions
  | CurrentCatalog
  | Secrets
  | AuditLog.AuditLog
  | OidcIssuer
  | AwsCredentials.StsClients
  | Provisioner
  | ProvisionedKeys
  | DeliveryConfig
> = Effect.gen(function* () {
  const sessions = yield* Sessions
  const catalog = yield* CurrentCatalog
  const secrets = yield* Secrets
  const audit = yield* AuditLog.AuditLog
  const oidc = yield* OidcIssuer
  const stsClients = yield* AwsCredentials.StsClients
  const provisioner = yield* Provisioner
  const provisioned = yield* ProvisionedKeys
  const config = yield* DeliveryConfig
  // Optional: with the egress proxy present, proxied capabilities deliver a proxy credential (issue 12).
  const egress = yield* Effect.serviceOption(EgressProxy)

  const buckets: SessionPolicy.Variables = Object.fromEntries(
    Object.entries(config.buckets).filter(([, v]) => v !== undefined)
  )

  const vaultGet = (wallet: string, name: string) =>
    secrets.get(wallet, name).pipe(Effect.mapError(vaultError))

  // -- checks 1–3: who, which state, what the catalog says now ---------------------------------

  const authorize = (caller: Principal.Agent, sessionId: string) =>
    Effect.gen(function* () {
      const session = yield* sessions.get(sessionId).pipe(
        Effect.mapError((e): Refusal => {
          switch (e._tag) {
            case "SessionMissing":
              return refuse(notFound(sessionId), "not-found")
            case "Tampered":
              return refuse(e, "tampered", "error")
            case "Unavailable":
              return refuse(e, "store-unavailable", "error")
          }
        })
      )
      if (session.agent !== caller.id) return yield* Effect.fail(refuse(notFound(sessionId), "not-owner"))
      const now = yield* DateTime.now
      if (
        session.status === "expired" ||
        (session.status === "active" && !DateTime.lessThan(now, session.expiresAt))
      ) {
        return yield* Effect.fail(
          refuse(new Expired({ message: "the session has expired", session: session.id }), "expired")
        )
      }
      if (session.status !== "active") {
        return yield* Effect.fail(
          refuse(
            new SessionNotActive({
              message: `the session is ${session.status}, not active`,
              session: session.id,
              status: session.status
            }),
            `not-active:${session.status}`
          )
        )
      }
      const current = yield* catalog.get
      const denied = (reason: RequestDenied["reason"], message: string) =>
        Effect.fail(refuse(new RequestDenied({ message, reason, capability: session.capability }), reason))
      const agent = current.agents.find((a) => a.id === caller.id)
      if (agent === undefined) return yield* denied("unknown-agent", "the agent is no longer in the catalog")
      const capability = current.capabilities.find((c) => c.id === session.capability)
      if (capability === undefined) {
        return yield* denied("unknown-capability", "the capability is no longer in the catalog")
      }
      if (!capability.agents.some((a) => a === caller.id)) {
        return yield* denied(
          "agent-not-allowed",
          "the catalog no longer allows this agent to use the capability"
        )
      }
      if (agent.wallet !== session.wallet || caller.wallet !== session.wallet) {
        return yield* denied("agent-not-allowed", "the agent's wallet changed since the session was granted")
      }
      return { session, capability, now }
    })

  // -- the backings --------------------------------------------------------------------------

  const bearer = (session: SessionView, backing: Catalog.BearerToken, now: DateTime.Utc) =>
    Effect.gen(function* () {
      if (backing.proxy !== undefined && Option.isSome(egress)) {
        // The agent gets the proxy URL and a proxy token; the key stays in the vault.
        const proxied = yield* egress.value.issue(session, backing)
        return { ...proxied, compensate: Effect.void } satisfies Issued
      }
      if (backing.proxy !== undefined) {
        return yield* Effect.fail(
          refuse(
            new ProxyOnly({
              message: `this capability is used through /v1/proxy/${session.capability}/…; its token is never handed out`,
              capability: session.capability
            }),
            "proxy-only"
          )
        )
      }
      const provision = backing.provision
      if (provision === undefined) {
        const token = yield* vaultGet(session.wallet, backing.secret)
        return {
          credential: { _tag: "bearer-token", token, provisioned: false },
          env: { [backing.env]: token },
          details: { backing: "bearer-token", provisioned: false },
          sensitive: token,
          compensate: Effect.void
        } satisfies Issued
      }
      const managementKey = yield* vaultGet(session.wallet, provision.managementSecret)
      const minted = yield* provisioner
        .mint({
          managementKey,
          name: `aap ${session.id} ${session.agent}`,
          limitUsd: provision.limitUsd,
          expiresAt: new Date(DateTime.toEpochMillis(session.expiresAt))
        })
        .pipe(
          Effect.mapError((e) =>
            e.kind === "refused"
              ? refuse(
                  new UpstreamRefused({
                    message: "the provider refused to mint a key (check the management key)",
                    upstream: "openrouter",
                    code: String(e.status ?? "refused")
                  }),
                  `provision-refused:${e.status ?? ""}`,
                  "error"
                )
              : refuse(
                  new CredentialUnavailable({
                    message: "the provider is unreachable",
                    reason: "upstream-unavailable"
                  }),
                  "provision-unreachable",
                  "error"
                )
          )
        )
      const revokeMinted = provisioner.revoke(managementKey, minted.hash).pipe(
        Effect.zipRight(
          provisioned.markRevoked(
            {
              session: session.id,
              provider: "openrouter",
              hash: minted.hash,
              wallet: session.wallet,
              capability: session.capability,
              managementSecret: provision.managementSecret,
              createdAt: epochSeconds(now),
              expiresAt: epochSeconds(session.expiresAt)
            },
            epochSeconds(now)
          )
        ),
        Effect.catchAll((e) => Effect.logWarning("could not revoke a discarded provisioned key", e._tag)),
        Effect.asVoid
      )
      // Record the hash before anything else can fail, so the worker can always revoke it.
      yield* provisioned
        .record({
          session: session.id,
          provider: "openrouter",
          hash: minted.hash,
          wallet: session.wallet,
          capability: session.capability,
          managementSecret: provision.managementSecret,
          createdAt: epochSeconds(now),
          expiresAt: epochSeconds(session.expiresAt)
        })
        .pipe(
          Effect.tapError(() => revokeMinted),
          Effect.mapError((e) => refuse(e, "store-unavailable", "error"))
        )
      return {
        credential: { _tag: "bearer-token", token: minted.key, provisioned: true },
        env: { [backing.env]: minted.key },
        details: { backing: "bearer-token", provisioned: true, provider: "openrouter", keyHash: minted.hash },
        sensitive: minted.key,
        compensate: revokeMinted
      } satisfies Issued
    })

  const awsSts = (session: SessionView, backing: Catalog.AwsSts, now: DateTime.Utc) =>
    Effect.gen(function* () {
      const remaining = (DateTime.toEpochMillis(session.expiresAt) - DateTime.toEpochMillis(now)) / 1000
      const durationSeconds = yield* Either.mapLeft(
        AwsCredentials.durationFor(remaining, config.stsMaxDurationSeconds),
        (e) =>
          refuse(
            new CredentialWindowTooShort({
              message: `the session has ${e.remainingSeconds}s left; STS issues credentials for at least ${e.minimumSeconds}s. Request a new session.`,
              session: session.id,
              remainingSeconds: e.remainingSeconds,
              minimumSeconds: e.minimumSeconds
            }),
            "sts-window-too-short"
          )
      )
      const policy = yield* Either.mapLeft(
        SessionPolicy.render(backing, {
          wallet: session.wallet,
          agent: session.agent,
          session: session.id,
          ...buckets
        }),
        (e) =>
          refuse(
            new CredentialUnavailable({
              message: `the capability's session policy cannot be rendered: ${e.message}`,
              reason: "misconfigured"
            }),
            "policy-unrenderable",
            "error"
          )
      )
      const token = yield* oidc
        .mint({ agent: session.agent, wallet: session.wallet, session: session.id, extraTags: policy.tags })
        .pipe(
          Effect.mapError(() =>
            refuse(
              new CredentialUnavailable({
                message: "the OIDC issuer key is unavailable",
                reason: "issuer-unavailable"
              }),
              "issuer-unavailable",
              "error"
            )
          )
        )
      const creds = yield* AwsCredentials.assume({
        region: backing.region,
        roleArn: backing.roleArn,
        roleSessionName: AwsCredentials.roleSessionName(session.id, session.agent),
        webIdentityToken: token.token,
        policy: policy.json,
        durationSeconds
      }).pipe(
        Effect.provideService(AwsCredentials.StsClients, stsClients),
        Effect.mapError((e) =>
          e.kind === "refused"
            ? refuse(
                new UpstreamRefused({
                  message:
                    "AWS STS refused AssumeRoleWithWebIdentity (check the role's trust policy and OIDC provider)",
                  upstream: "aws-sts",
                  code: e.code
                }),
                `sts-refused:${e.code}`,
                "error"
              )
            : refuse(
                new CredentialUnavailable({
                  message: "AWS STS is unreachable",
                  reason: "upstream-unavailable"
                }),
                `sts-unreachable:${e.code}`,
                "error"
              )
        )
      )
      return {
        credential: {
          _tag: "aws-sts",
          accessKeyId: creds.accessKeyId,
          secretAccessKey: creds.secretAccessKey,
          sessionToken: creds.sessionToken,
          expiration: DateTime.unsafeFromDate(creds.expiration),
          region: backing.region,
          roleArn: backing.roleArn
        },
        env: {
          AWS_ACCESS_KEY_ID: Redacted.make(creds.accessKeyId),
          AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
          AWS_SESSION_TOKEN: creds.sessionToken,
          AWS_REGION: Redacted.make(backing.region),
          AWS_DEFAULT_REGION: Redacted.make(backing.region)
        },
        details: {
          backing: "aws-sts",
          roleArn: backing.roleArn,
          accessKeyId: creds.accessKeyId,
          durationSeconds,
          oidcKid: token.kid
        },
        sensitive: creds.sessionToken,
        compensate: Effect.void
      } satisfies Issued
    })

  const sshCertificate = (
    session: SessionView,
    backing: Catalog.SshCertificate,
    now: DateTime.Utc,
    publicKey: string | undefined
  ) =>
    Effect.gen(function* () {
      const invalidKey = (message: string) => refuse(new InvalidPublicKey({ message }), "invalid-public-key")
      if (publicKey === undefined) {
        return yield* Effect.fail(
          invalidKey("an ssh-certificate capability needs publicKey (an ssh-ed25519 public key line)")
        )
      }
      // Checked before the CA is read: a bad key costs no vault read.
      yield* SshCertificate.parsePublicKey(publicKey).pipe(
        Effect.mapError((e) => invalidKey(`publicKey is not an OpenSSH ssh-ed25519 public key: ${e.reason}`))
      )
      const caMaterial = yield* vaultGet(session.wallet, backing.ca)
      const ca = yield* SshCertificate.loadAuthority(caMaterial).pipe(
        Effect.mapError(() =>
          refuse(
            new CredentialUnavailable({
              message: `the CA key ${JSON.stringify(backing.ca)} is not an Ed25519 private key`,
              reason: "misconfigured"
            }),
            "ca-unreadable",
            "error"
          )
        )
      )
      const keyId = `aap:${session.id}:${session.agent}`
      const cert = yield* SshCertificate.sign(ca, {
        publicKey,
        keyId,
        principals: backing.principals,
        validAfter: epochSeconds(now) - config.sshClockSkewSeconds,
        validBefore: epochSeconds(session.expiresAt),
        serial: SshCertificate.randomSerial(),
        extensions: backing.extensions ?? SshCertificate.defaultExtensions
      }).pipe(Effect.mapError((e) => invalidKey(e.reason)))
      return {
        credential: {
          _tag: "ssh-certificate",
          certificate: cert.line,
          keyId,
          serial: cert.serial.toString(),
          principals: [...cert.principals],
          validAfter: DateTime.unsafeMake(cert.validAfter * 1000),
          validBefore: DateTime.unsafeMake(cert.validBefore * 1000)
        },
        env: {},
        details: {
          backing: "ssh-certificate",
          keyId,
          serial: cert.serial.toString(),
          principals: cert.principals.join(",")
        },
        sensitive: undefined,
        compensate: Effect.void
      } satisfies Issued
    })

  const wrappedCommand = (session: SessionView, backing: Catalog.WrappedCommand) =>
    Effect.gen(function* () {
      const env: Record<string, Redacted.Redacted<string>> = {}
      for (const [name, secret] of Object.entries(backing.env))
        env[name] = yield* vaultGet(session.wallet, secret)
      return {
        credential: { _tag: "wrapped-command", command: [...backing.command] },
        env,
        details: {
          backing: "wrapped-command",
          command: backing.command.join(" "),
          env: Object.keys(env).join(",")
        },
        sensitive: undefined,
        compensate: Effect.void
      } satisfies Issued
    })

  // -- deliver -------------------------------------------------------------------------------

  const deliver = (caller: Principal.Agent, sessionId: string, request: DeliverRequest) =>
    Effect.gen(function* () {
      const actor = { type: "agent" as const, id: caller.id }
      const outcome = yield* Effect.either(
        Effect.gen(function* () {
          const { session, capability, now } = yield* authorize(caller, sessionId)
          const backing = capability.backing
          const issued: Issued = yield* backing.type === "bearer-token"
            ? bearer(session, backing, now)
            : backing.type === "aws-sts"
              ? awsSts(session, backing, now)
              : backing.type === "ssh-certificate"
                ? sshCertificate(session, backing, now, request.publicKey)
                : wrappedCommand(session, backing)
          return { session, capability, issued }
        })
      )

      if (Either.isLeft(outcome)) {
        const refusal = outcome.left
        // Refusals are audited too; if that fails the caller learns the audit is down.
        yield* audit.append({
          actor,
          action: "credential.issued",
          outcome: refusal.outcome,
          session: sessionId.slice(0, 128),
          reason: refusal.auditReason,
          details: {}
        })
        yield* Effect.logInfo("credential refused").pipe(
          Effect.annotateLogs({
            session: sessionId.slice(0, 128),
            agent: caller.id,
            error: refusal.error._tag
          })
        )
        return yield* Effect.fail(refusal.error)
      }

      const { session, capability, issued } = outcome.right
      // Check 4: durably audited before anything is returned.
      yield* audit
        .append({
          actor,
          action: "credential.issued",
          outcome: "success",
          capability: capability.id,
          session: session.id,
          wallet: session.wallet,
          tier: capability.tier,
          details: { ...issued.details, expiresAt: DateTime.formatIso(session.expiresAt) },
          ...(issued.sensitive === undefined ? {} : { sensitive: { credential: issued.sensitive } })
        })
        .pipe(
          Effect.tapError(() =>
            issued.compensate.pipe(
              Effect.zipRight(
                Effect.logError("audit append failed; credential discarded").pipe(
                  Effect.annotateLogs({ session: session.id, capability: capability.id })
                )
              )
            )
          )
        )
      yield* Effect.logInfo("credential issued").pipe(
        Effect.annotateLogs({
          session: session.id,
          agent: caller.id,
          capability: capability.id,
          backing: capability.backing.type
        })
      )
      // Built from typed values without re-validating them (validation on construction was
      // ~8% of a delivery's CPU); the HTTP layer encodes it against the same schema anyway.
      return new DeliveredCredential(
        {
          session: session.id,
          capability: capability.id,
          env: issued.env,
          expiresAt: session.expiresAt,
          credential: issued.credential
        },
        { disableValidation: true }
      )
    })

  // -- release (revocation of provisioned keys) ------------------------------------------------

  const revokeAll = (keys: ReadonlyArray<ProvisionedKey>) =>
    Effect.gen(function* () {
      let revoked = 0
      let failed = 0
      const at = epochSeconds(yield* DateTime.now)
      for (const key of keys) {
        if (key.revokedAt !== undefined) continue
        const ok = yield* secrets.get(key.wallet, key.managementSecret).pipe(
          Effect.flatMap((mgmt) => provisioner.revoke(mgmt, key.hash)),
          Effect.zipRight(provisioned.markRevoked(key, at)),
          Effect.zipRight(
            audit.append({
              actor: { type: "system", id: "delivery" },
              action: "credential.revoked",
              outcome: "success",
              session: key.session,
              capability: key.capability,
              wallet: key.wallet,
              details: { provider: key.provider, keyHash: key.hash }
            })
          ),
          Effect.as(true),
          Effect.catchAll((e) =>
            Effect.logWarning("provisioned key not revoked yet").pipe(
              Effect.annotateLogs({ session: key.session, keyHash: key.hash, error: e._tag }),
              Effect.as(false)
            )
          )
        )
        if (ok) revoked++
        else failed++
      }
      return { revoked, failed }
    })

  return Delivery.of({
    deliver: (caller, sessionId, request) => deliver(caller, sessionId, request),
    release: (sessionId) => provisioned.forSession(sessionId).pipe(Effect.flatMap(revokeAll)),
    releaseDue: (limit) =>
      DateTime.now.pipe(
        Effect.flatMap((now) => provisioned.due(epochSeconds(now), limit)),
        Effect.flatMap(revokeAll)
      )
  })
})

export const layer: Layer.Layer<
  Delivery,
  never,
  | Sessions
  | CurrentCatalog
  | Secrets
  | AuditLog.AuditLog
  | OidcIssuer
  | AwsCredentials.StsClients
  | Provisioner
  | ProvisionedKeys
  | DeliveryConfig
> = Layer.effect(Delivery, make)

export { Unavailable }
