/**
 * The coordination HTTP contract (DESIGN §10): sessions, link codes, enrolment. Only `effect`
 * and `@effect/platform`; no authentication here — the broker adds its middlewares when it
 * composes the groups, resolves the caller with `Identities.authenticate` and passes the
 * `Principal` to `Sessions` / `Identities`, which decide who may do what.
 *
 * Groups and who calls them:
 * - `sessions`: agents (request, get own, revoke own) and operators (get, list, approve,
 *   deny, revoke). One middleware accepting both; the service checks the role.
 * - `linkCodes`: operators.
 * - `enrolment`: anyone (the link code is the credential).
 *
 * @since 0.1.0
 */
import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import {
  BadRequest,
  Conflict,
  DuplicateApprover,
  Expired,
  Forbidden,
  InvalidCursor,
  NotFound,
  RateLimited,
  RequestDenied,
  SelfApproval,
  Tampered,
  Unauthorized,
  Unavailable,
  UnknownOperator
} from "./Errors.js"
import { Session, SessionId, Status } from "./Session.js"

/** What the broker's authentication resolves a bearer token to (it passes it to the services). */
export { Principal } from "./Principal.js"
export { Session } from "./Session.js"

/** `POST /v1/sessions` */
export const SessionRequest = Schema.Struct({
  capability: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(64)),
  ttlSeconds: Schema.optional(Schema.Int.pipe(Schema.positive())),
  justification: Schema.optional(Schema.String.pipe(Schema.maxLength(1000))),
  breakGlass: Schema.optional(Schema.Boolean)
}).annotations({ identifier: "SessionRequest" })

/** `POST /v1/sessions/{id}/approve|deny|revoke` */
export const Decision = Schema.Struct({
  reason: Schema.optional(Schema.String.pipe(Schema.maxLength(1000))),
  /** Act only if the session is still at this version (else 409). */
  expectedVersion: Schema.optional(Schema.Int.pipe(Schema.positive()))
}).annotations({ identifier: "SessionDecision" })

export const SessionPath = Schema.Struct({ id: SessionId })

/** `GET /v1/sessions?status=&agent=&cursor=&limit=` */
export const ListParams = Schema.Struct({
  status: Schema.optional(Status),
  agent: Schema.optional(Schema.String),
  cursor: Schema.optional(Schema.String),
  limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 100)))
})

export const SessionList = Schema.Struct({
  sessions: Schema.Array(Session),
  /** Pass back as `cursor` for the next page; absent on the last page. */
  cursor: Schema.optional(Schema.String)
}).annotations({ identifier: "SessionList" })

const WireSession = Session.annotations({ identifier: "Session" })

export class SessionsApi extends HttpApiGroup.make("sessions")
  .add(
    HttpApiEndpoint.post("request", "/v1/sessions")
      .setPayload(SessionRequest)
      .addSuccess(WireSession, { status: 201 })
      .addError(Forbidden)
      .addError(RequestDenied)
      .addError(RateLimited)
      .addError(Tampered)
      .addError(Unavailable)
  )
  .add(
    HttpApiEndpoint.get("list", "/v1/sessions")
      .setUrlParams(ListParams)
      .addSuccess(SessionList)
      .addError(Forbidden)
      .addError(BadRequest)
      .addError(InvalidCursor)
      .addError(Tampered)
      .addError(Unavailable)
  )
  .add(
    HttpApiEndpoint.get("get", "/v1/sessions/:id")
      .setPath(SessionPath)
      .addSuccess(WireSession)
      .addError(NotFound)
      .addError(Tampered)
      .addError(Unavailable)
  )
  .add(
    HttpApiEndpoint.post("revoke", "/v1/sessions/:id/revoke")
      .setPath(SessionPath)
      .setPayload(Decision)
      .addSuccess(WireSession)
      .addError(Forbidden)
      .addError(NotFound)
      .addError(Conflict)
      .addError(Expired)
      .addError(Tampered)
      .addError(Unavailable)
  )
  .add(
    HttpApiEndpoint.post("approve", "/v1/sessions/:id/approve")
      .setPath(SessionPath)
      .setPayload(Decision)
      .addSuccess(WireSession)
      .addError(Forbidden)
      .addError(SelfApproval)
      .addError(UnknownOperator)
      .addError(NotFound)
      .addError(Conflict)
      .addError(DuplicateApprover)
      .addError(Expired)
      .addError(Tampered)
      .addError(Unavailable)
  )
  .add(
    HttpApiEndpoint.post("deny", "/v1/sessions/:id/deny")
      .setPath(SessionPath)
      .setPayload(Decision)
      .addSuccess(WireSession)
      .addError(Forbidden)
      .addError(SelfApproval)
      .addError(UnknownOperator)
      .addError(NotFound)
      .addError(Conflict)
      .addError(DuplicateApprover)
      .addError(Expired)
      .addError(Tampered)
      .addError(Unavailable)
  )
  .annotate(OpenApi.Title, "Sessions")
  .annotate(OpenApi.Description, "Request, inspect, approve, deny, revoke and list sessions (grants).") {}

/** `POST /v1/agents/{id}/link-codes` → shown once. */
export const IssuedLinkCode = Schema.Struct({
  code: Schema.Redacted(Schema.String),
  expiresAt: Schema.DateTimeUtc
}).annotations({ identifier: "IssuedLinkCode" })

export class LinkCodesApi extends HttpApiGroup.make("linkCodes")
  .add(
    HttpApiEndpoint.post("issue", "/v1/agents/:id/link-codes")
      .setPath(Schema.Struct({ id: Schema.String }))
      .addSuccess(IssuedLinkCode, { status: 201 })
      .addError(Forbidden)
      .addError(NotFound)
      .addError(Unavailable)
  )
  .annotate(OpenApi.Title, "Link codes")
  .annotate(OpenApi.Description, "Operators mint single-use, 10-minute enrolment codes for agents.") {}

/** One of an agent's tokens as operators see it: never the token, never its hash. */
export const TokenSummary = Schema.Struct({
  fingerprint: Schema.String,
  createdAt: Schema.DateTimeUtc,
  revokedAt: Schema.optional(Schema.DateTimeUtc)
}).annotations({ identifier: "TokenSummary" })

/** `POST /v1/agents/{id}/tokens/revoke`: all the agent's live tokens, or the one with `fingerprint`. */
export const RevokeTokensRequest = Schema.Struct({
  fingerprint: Schema.optional(Schema.String.pipe(Schema.pattern(/^[0-9a-f]{12}$/)))
}).annotations({ identifier: "RevokeTokensRequest" })

export class TokensApi extends HttpApiGroup.make("tokens")
  .add(
    HttpApiEndpoint.get("list", "/v1/agents/:id/tokens")
      .setPath(Schema.Struct({ id: Schema.String }))
      .addSuccess(Schema.Struct({ tokens: Schema.Array(TokenSummary) }))
      .addError(Forbidden)
      .addError(Tampered)
      .addError(Unavailable)
  )
  .add(
    HttpApiEndpoint.post("revoke", "/v1/agents/:id/tokens/revoke")
      .setPath(Schema.Struct({ id: Schema.String }))
      .setPayload(RevokeTokensRequest)
      .addSuccess(Schema.Struct({ revoked: Schema.Int }))
      .addError(Forbidden)
      .addError(Tampered)
      .addError(Unavailable)
  )
  .annotate(OpenApi.Title, "Tokens")
  .annotate(
    OpenApi.Description,
    "Operators list an agent's tokens (fingerprints only) and revoke them: all, or one by fingerprint. A revoked token authenticates nobody from the next request on (within AAP_CACHE_TTL on other instances)."
  ) {}

/** `POST /v1/link-codes/redeem` */
export const RedeemRequest = Schema.Struct({
  code: Schema.Redacted(Schema.String.pipe(Schema.maxLength(64)))
}).annotations({ identifier: "RedeemRequest" })

/** The agent's token, shown once. */
export const Enrolment = Schema.Struct({
  agent: Schema.String,
  token: Schema.Redacted(Schema.String)
}).annotations({ identifier: "Enrolment" })

export class EnrolmentApi extends HttpApiGroup.make("enrolment")
  .add(
    HttpApiEndpoint.post("redeem", "/v1/link-codes/redeem")
      .setPayload(RedeemRequest)
      .addSuccess(Enrolment)
      .addError(Unauthorized)
      .addError(Unavailable)
  )
  .annotate(OpenApi.Title, "Enrolment")
  .annotate(OpenApi.Description, "Agents redeem a link code, once, for their token. No authentication.") {}
