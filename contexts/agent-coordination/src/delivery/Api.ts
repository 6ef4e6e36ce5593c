/**
 * The delivery contract (DESIGN §10): `POST /v1/sessions/{id}/credentials` `{ publicKey? }` →
 * the credential, the environment to inject and `expiresAt`. Only `effect` and
 * `@effect/platform`; the broker adds authentication (owner agent) and the handler (ADR 0050).
 *
 * Secret fields are `Schema.Redacted(Schema.String)`: `Redacted` in the broker and in a typed
 * client, a plain string only in the JSON body on the wire.
 *
 * @since 0.1.0
 */

import { AuditError } from "@aap/audit"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"
import { Expired, NotFound, RequestDenied, Tampered, Unavailable } from "../Errors.js"
import { ProxyCredential } from "../proxy/ProxyCredential.js"

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/** 409: the session exists and is the caller's, but is not `active` (pending, revoked, denied). */
export class SessionNotActive extends Schema.TaggedError<SessionNotActive>()(
  "SessionNotActive",
  {
    message: Schema.String,
    session: Schema.String,
    status: Schema.Literal("pending_approval", "revoked", "denied")
  },
  HttpApiSchema.annotations({ status: 409 })
) {}

/**
 * 409: an `aws-sts` session has less time left than the shortest credential STS issues (900 s);
 * request a new session (ADR 0045).
 */
export class CredentialWindowTooShort extends Schema.TaggedError<CredentialWindowTooShort>()(
  "CredentialWindowTooShort",
  {
    message: Schema.String,
    session: Schema.String,
    remainingSeconds: Schema.Int,
    minimumSeconds: Schema.Int
  },
  HttpApiSchema.annotations({ status: 409 })
) {}

/**
 * 403: the capability's token is only used through the egress proxy (`/v1/proxy/<capability>/…`);
 * it is never handed to the agent.
 */
export class ProxyOnly extends Schema.TaggedError<ProxyOnly>()(
  "ProxyOnly",
  { message: Schema.String, capability: Schema.String },
  HttpApiSchema.annotations({ status: 403 })
) {}

/** 400: `publicKey` is missing for an `ssh-certificate` capability, or is not an OpenSSH Ed25519 key. */
export class InvalidPublicKey extends Schema.TaggedError<InvalidPublicKey>()(
  "InvalidPublicKey",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {}

/**
 * 502: the upstream (AWS STS, the provider's key API) refused to issue — usually configuration:
 * the role's trust policy, the OIDC provider, the management key. `code` is the upstream's
 * error code or HTTP status, never its message.
 */
export class UpstreamRefused extends Schema.TaggedError<UpstreamRefused>()(
  "UpstreamRefused",
  { message: Schema.String, upstream: Schema.Literal("aws-sts", "openrouter"), code: Schema.String },
  HttpApiSchema.annotations({ status: 502 })
) {}

/**
 * 503: the credential cannot be produced right now — the vault or the upstream is unreachable,
 * the named secret is missing in the session's wallet, or the issuer key is unreadable. The
 * operator fixes it; nothing was issued.
 */
export class CredentialUnavailable extends Schema.TaggedError<CredentialUnavailable>()(
  "CredentialUnavailable",
  {
    message: Schema.String,
    reason: Schema.Literal(
      "secret-missing",
      "vault-unavailable",
      "issuer-unavailable",
      "upstream-unavailable",
      "misconfigured"
    )
  },
  HttpApiSchema.annotations({ status: 503 })
) {}

// ---------------------------------------------------------------------------------------------
// Request and response
// ---------------------------------------------------------------------------------------------

/** At most 16 KiB: an OpenSSH public key line is well under 1 KiB. */
export const DeliverRequest = Schema.Struct({
  publicKey: Schema.optional(Schema.String.pipe(Schema.maxLength(16_384)))
})
export type DeliverRequest = typeof DeliverRequest.Type

const Secret = Schema.Redacted(Schema.String)

export const BearerTokenCredential = Schema.TaggedStruct("bearer-token", {
  token: Secret,
  /** Minted for this session by the provider's key API (revoked when the session ends). */
  provisioned: Schema.Boolean
})

export const AwsStsCredential = Schema.TaggedStruct("aws-sts", {
  accessKeyId: Schema.String,
  secretAccessKey: Secret,
  sessionToken: Secret,
  /** When STS says the keys expire (never after the session's `expiresAt`). */
  expiration: Schema.DateTimeUtc,
  region: Schema.String,
  roleArn: Schema.String
})

export const SshCertificateCredential = Schema.TaggedStruct("ssh-certificate", {
  /** `ssh-ed25519-cert-v01@openssh.com AAAA… <keyId>`: write it next to the private key as `<key>-cert.pub`. */
  certificate: Schema.String,
  keyId: Schema.String,
  serial: Schema.String,
  principals: Schema.Array(Schema.String),
  validAfter: Schema.DateTimeUtc,
  validBefore: Schema.DateTimeUtc
})

export const WrappedCommandCredential = Schema.TaggedStruct("wrapped-command", {
  /** The argv prefix `aap exec` allows. Enforced by the client, not a security boundary. */
  command: Schema.Array(Schema.String)
})

export const Credential = Schema.Union(
  BearerTokenCredential,
  AwsStsCredential,
  SshCertificateCredential,
  WrappedCommandCredential,
  /** A `bearer-token` capability with `proxy`: the proxy's base URL and a proxy token (issue 12). */
  ProxyCredential
)
export type Credential = typeof Credential.Type

/** What `POST /v1/sessions/{id}/credentials` returns. */
export class DeliveredCredential extends Schema.Class<DeliveredCredential>("DeliveredCredential")({
  session: Schema.String,
  capability: Schema.String,
  /** Environment variables to inject (`aap exec`); values may be secrets. */
  env: Schema.Record({ key: Schema.String, value: Secret }),
  /** The end of the session: the credential is not valid (or not meant to be used) after it. */
  expiresAt: Schema.DateTimeUtc,
  credential: Credential
}) {}

// ---------------------------------------------------------------------------------------------
// The group
// ---------------------------------------------------------------------------------------------

export const deliver = HttpApiEndpoint.post("deliver", "/v1/sessions/:id/credentials")
  .setPath(Schema.Struct({ id: Schema.String.pipe(Schema.maxLength(128)) }))
  .setPayload(DeliverRequest)
  .addSuccess(DeliveredCredential)
  .addError(NotFound)
  .addError(Expired)
  .addError(SessionNotActive)
  .addError(RequestDenied)
  .addError(CredentialWindowTooShort)
  .addError(ProxyOnly)
  .addError(InvalidPublicKey)
  .addError(UpstreamRefused)
  .addError(CredentialUnavailable)
  .addError(AuditError.AuditUnavailable)
  .addError(Unavailable)
  .addError(Tampered)

/** The delivery group. The broker attaches `AgentAuth` (owner agent only). */
export class DeliveryGroup extends HttpApiGroup.make("delivery").add(deliver) {}
