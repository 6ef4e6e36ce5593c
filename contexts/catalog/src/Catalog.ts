/**
 * The capability catalog: its schema, its domain types and `authorize`.
 *
 * The catalog is the policy (DESIGN §2.2): what it does not grant is denied. This module is
 * pure; loading a file lives in `CatalogFile`, IAM policy rendering in `SessionPolicy`.
 *
 * Durations (`ttl.default`, `ttl.max`) are written `90s`, `15m`, `1h`, `1h30m` in the file and
 * decoded to a whole number of **seconds** (ADR 0005).
 */
import { HttpApiSchema } from "@effect/platform"
import { Either, ParseResult, Schema } from "effect"
import * as internalDuration from "./internal/duration.js"

// ---------------------------------------------------------------------------------------------
// Identifiers
// ---------------------------------------------------------------------------------------------

/** Lowercase letters, digits, `-`, `_`; 1–63 characters; starts with a letter or digit. */
export const ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/

const idProblem = (kind: string, value: string): string | undefined => {
  if (ID_PATTERN.test(value)) return undefined
  const expected = `expected lowercase letters, digits, "-" or "_" (1-63 characters, starting with a letter or digit)`
  for (const bad of ["..", "/", "*", "#", "$", "{", "}", " "]) {
    if (value.includes(bad))
      return `${kind} ${JSON.stringify(value)} must not contain ${JSON.stringify(bad)}; ${expected}`
  }
  return `${kind} ${JSON.stringify(value)} is not a valid ${kind}; ${expected}`
}

const id = <B extends string>(kind: string, brand: B) =>
  Schema.String.pipe(
    Schema.filter((value) => idProblem(kind, value) ?? true, {
      jsonSchema: { pattern: ID_PATTERN.source },
      description: `${kind}: lowercase letters, digits, "-" or "_", 1-63 characters`
    }),
    Schema.brand(brand)
  )

/** An agent id (`codex`, `claude`). */
export const AgentId = id("agent id", "@aap/catalog/AgentId")
export type AgentId = typeof AgentId.Type

/** An operator id (`alice`). */
export const OperatorId = id("operator id", "@aap/catalog/OperatorId")
export type OperatorId = typeof OperatorId.Type

/** A capability id (`openrouter-chat`); also used in URL paths such as `/v1/proxy/<capability>`. */
export const CapabilityId = id("capability id", "@aap/catalog/CapabilityId")
export type CapabilityId = typeof CapabilityId.Type

/**
 * A wallet id: one key-prefix segment in every store and in Class A resources
 * (`memory_bucket/<wallet>/*`). The charset makes escaping the prefix impossible: no `/`, `*`,
 * `..`, `#`, `$`.
 */
export const WalletId = id("wallet", "@aap/catalog/WalletId")
export type WalletId = typeof WalletId.Type

const SECRET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*(?:\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/

/** A vault secret name inside the session's wallet (`openrouter/api-key`). Never a secret value. */
export const SecretName = Schema.String.pipe(
  Schema.filter(
    (name) =>
      (name.length <= 128 && SECRET_NAME.test(name) && !name.split("/").includes("..")) ||
      `secret name ${JSON.stringify(name)}: expected segments of letters, digits, ".", "-", "_" separated by "/" (no "..", "#", leading or trailing "/", at most 128 characters)`,
    { jsonSchema: { pattern: SECRET_NAME.source, maxLength: 128 }, description: "vault secret name" }
  ),
  Schema.brand("@aap/catalog/SecretName")
)
export type SecretName = typeof SecretName.Type

const ENV_VAR = /^[A-Z_][A-Z0-9_]*$/

/** An environment variable name (`OPENROUTER_API_KEY`). */
export const EnvVarName = Schema.String.pipe(
  Schema.pattern(ENV_VAR, {
    message: (issue) =>
      `expected an environment variable name (A-Z, 0-9, "_", not starting with a digit), got ${JSON.stringify(issue.actual)}`
  })
)

// ---------------------------------------------------------------------------------------------
// Durations and TTL
// ---------------------------------------------------------------------------------------------

/** Parse `90s`, `15m`, `1h`, `1h30m` to seconds; `undefined` when not a valid duration. */
export const parseDuration: (text: string) => number | undefined = internalDuration.parse

/** Canonical text for a number of seconds (`5400` → `1h30m`). */
export const formatDuration: (seconds: number) => string = internalDuration.format

const formatActual = (actual: unknown): string =>
  actual === undefined ? "nothing" : typeof actual === "string" ? JSON.stringify(actual) : String(actual)

const DURATION_TEXT = Schema.String.annotations({
  jsonSchema: {
    type: "string",
    pattern: "^(?:[0-9]+h)?(?:[0-9]+m)?(?:[0-9]+s)?$",
    minLength: 2,
    description: "a duration: hours, minutes and seconds such as 90s, 15m, 1h, 1h30m",
    examples: ["90s", "15m", "1h", "1h30m"]
  },
  description: "a duration: hours, minutes and seconds such as 90s, 15m, 1h, 1h30m",
  message: (issue) => `expected a duration such as 90s, 15m, 1h or 1h30m, got ${formatActual(issue.actual)}`
})

/** A duration written `90s` / `15m` / `1h` / `1h30m`, decoded to a positive whole number of seconds. */
export const DurationSeconds = Schema.transformOrFail(DURATION_TEXT, Schema.Int.pipe(Schema.positive()), {
  strict: true,
  decode: (text, _, ast) => {
    const seconds = internalDuration.parse(text)
    return seconds === undefined
      ? ParseResult.fail(
          new ParseResult.Type(
            ast,
            text,
            `expected a duration such as 90s, 15m, 1h or 1h30m (at most 366 days), got ${JSON.stringify(text)}`
          )
        )
      : ParseResult.succeed(seconds)
  },
  encode: (seconds) => ParseResult.succeed(internalDuration.format(seconds))
})

/** `{ default, max }`, both in seconds once decoded. */
export const Ttl = Schema.Struct({
  default: DurationSeconds,
  max: DurationSeconds
})
export interface Ttl extends Schema.Schema.Type<typeof Ttl> {}

// ---------------------------------------------------------------------------------------------
// Tiers
// ---------------------------------------------------------------------------------------------

/** `low` auto-grant · `medium` auto-grant, full audit · `high` one+ approval · `critical` break-glass. */
export const Tier = Schema.Literal("low", "medium", "high", "critical")
export type Tier = typeof Tier.Type

/** The longest TTL a tier allows, in seconds (low 24h, medium 8h, high 1h, critical 15m). */
export const tierCeilingSeconds: Readonly<Record<Tier, number>> = {
  low: 24 * 3600,
  medium: 8 * 3600,
  high: 3600,
  critical: 15 * 60
}

/** Whether sessions of this tier wait for operator approvals. */
export const tierNeedsApproval = (tier: Tier): boolean => tier === "high" || tier === "critical"

// ---------------------------------------------------------------------------------------------
// Backings
// ---------------------------------------------------------------------------------------------

/** The template variables allowed in `aws-sts` resources and session tags. */
export const TEMPLATE_VARIABLES = [
  "wallet",
  "agent",
  "session",
  "vault_bucket",
  "memory_bucket",
  "audit_bucket"
] as const
export type TemplateVariable = (typeof TEMPLATE_VARIABLES)[number]

/** Buckets whose keys are partitioned by wallet: resources on them must be scoped to `${wallet}`. */
export const WALLET_SCOPED_BUCKETS: ReadonlyArray<TemplateVariable> = ["memory_bucket", "vault_bucket"]

const IAM_ACTION = /^[a-z0-9-]+:[A-Za-z0-9*?]+$/

/** One statement of the session policy. Resources may use the template variables. */
export const AwsStatement = Schema.Struct({
  effect: Schema.optionalWith(Schema.Literal("Allow", "Deny"), { default: () => "Allow" as const }),
  actions: Schema.NonEmptyArray(
    Schema.String.pipe(
      Schema.pattern(IAM_ACTION, {
        message: (issue) =>
          `expected an IAM action "service:Action" such as s3:GetObject or s3:Get* (a bare "*" is not allowed), got ${JSON.stringify(issue.actual)}`
      })
    )
  ),
  resources: Schema.NonEmptyArray(Schema.NonEmptyTrimmedString),
  /**
   * IAM condition block: operator → condition key → value(s); values may use the template
   * variables (`s3:prefix: ["${wallet}/*"]`).
   */
  conditions: Schema.optional(
    Schema.Record({
      key: Schema.String.pipe(
        Schema.pattern(/^(?:(?:ForAnyValue|ForAllValues):)?[A-Za-z]+$/, {
          message: (issue) =>
            `expected an IAM condition operator such as StringLike or StringEquals, got ${JSON.stringify(issue.actual)}`
        })
      ),
      value: Schema.Record({
        key: Schema.String.pipe(
          Schema.pattern(/^[A-Za-z0-9-]+:[A-Za-z0-9_/-]+$/, {
            message: (issue) =>
              `expected an IAM condition key such as s3:prefix or aws:SourceIp, got ${JSON.stringify(issue.actual)}`
          })
        ),
        value: Schema.Union(Schema.String, Schema.NonEmptyArray(Schema.String))
      })
    })
  )
})
export interface AwsStatement extends Schema.Schema.Type<typeof AwsStatement> {}

/** Class A: STS credentials from `AssumeRoleWithWebIdentity`, scoped by a rendered session policy. */
export const AwsSts = Schema.Struct({
  type: Schema.Literal("aws-sts"),
  roleArn: Schema.String.pipe(
    Schema.pattern(/^arn:aws[a-z-]*:iam::[0-9]{12}:role\/[A-Za-z0-9+=,.@_/-]{1,512}$/, {
      message: (issue) =>
        `expected an IAM role ARN such as arn:aws:iam::123456789012:role/aap-memory, got ${JSON.stringify(issue.actual)}`
    })
  ),
  region: Schema.String.pipe(
    Schema.pattern(/^[a-z]{2}(?:-[a-z]+)+-[0-9]$/, {
      message: (issue) => `expected an AWS region such as eu-central-1, got ${JSON.stringify(issue.actual)}`
    })
  ),
  statements: Schema.NonEmptyArray(AwsStatement),
  sessionTags: Schema.optional(
    Schema.Record({
      key: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9_.:/=+@-]{1,128}$/)),
      value: Schema.String.pipe(Schema.maxLength(256))
    })
  )
})
export interface AwsSts extends Schema.Schema.Type<typeof AwsSts> {}

/** Per-grant upstream key provisioning (the broker mints a key per session and revokes it at the end). */
export const OpenRouterProvision = Schema.Struct({
  type: Schema.Literal("openrouter"),
  /** Vault name of the OpenRouter management (provisioning) key, inside the session's wallet. */
  managementSecret: SecretName,
  /** Spending limit of each minted key, in US dollars. */
  limitUsd: Schema.optional(Schema.Number.pipe(Schema.positive(), Schema.finite()))
})
export interface OpenRouterProvision extends Schema.Schema.Type<typeof OpenRouterProvision> {}

export const HttpMethod = Schema.Literal("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
export type HttpMethod = typeof HttpMethod.Type

/** Egress proxy: the broker forwards allowed requests and injects the token; the agent never holds it. */
export const BearerProxy = Schema.Struct({
  upstream: Schema.String.pipe(
    Schema.pattern(/^https:\/\/[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:\/[^\s?#]*)?$/, {
      message: (issue) =>
        `expected an https:// URL without query or fragment, such as https://openrouter.ai, got ${JSON.stringify(issue.actual)}`
    })
  ),
  /** Header that carries the token (`Authorization`, `x-api-key`). */
  header: Schema.String.pipe(
    Schema.pattern(/^[A-Za-z0-9-]{1,64}$/, {
      message: (issue) =>
        `expected an HTTP header name such as Authorization, got ${JSON.stringify(issue.actual)}`
    })
  ),
  /** Prefix before the token in the header value (`Bearer`). */
  scheme: Schema.optional(Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9-]{1,32}$/))),
  /** Allowed upstream paths; a trailing `*` matches any suffix (`/api/v1/chat/*`). */
  paths: Schema.NonEmptyArray(
    Schema.String.pipe(
      Schema.pattern(/^\/[A-Za-z0-9._~!$&'()+,;=:@%/-]*\*?$/, {
        message: (issue) =>
          `expected an absolute path, optionally ending in "*" (such as /api/v1/chat/completions), got ${JSON.stringify(issue.actual)}`
      })
    )
  ),
  methods: Schema.NonEmptyArray(HttpMethod),
  /**
   * Forward-proxy mode (`HTTPS_PROXY`, ADR 0081): present (even empty) means the capability may
   * be used through CONNECT; the entries are extra `host:port` targets a session may open a
   * blind tunnel to (no key injected, bytes not inspected; audited once per tunnel). The
   * upstream's own host is never listed here: it is intercepted (operator CA) or refused.
   */
  connect: Schema.optional(
    Schema.Array(
      Schema.String.pipe(
        Schema.pattern(
          /^(?=.{1,260}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*:[0-9]{1,5}$/,
          {
            message: (issue) =>
              `expected a host:port CONNECT target such as api.github.com:443, got ${JSON.stringify(issue.actual)}`
          }
        )
      )
    ).pipe(Schema.maxItems(64))
  )
})
export interface BearerProxy extends Schema.Schema.Type<typeof BearerProxy> {}

/** Class B: a bearer token released from the vault (or provisioned per grant). */
export const BearerToken = Schema.Struct({
  type: Schema.Literal("bearer-token"),
  /** Vault name inside the session's wallet. */
  secret: SecretName,
  /** Environment variable the token is injected as (`aap exec`). */
  env: EnvVarName,
  provision: Schema.optional(OpenRouterProvision),
  proxy: Schema.optional(BearerProxy)
})
export interface BearerToken extends Schema.Schema.Type<typeof BearerToken> {}

export const SshExtension = Schema.Literal(
  "permit-pty",
  "permit-port-forwarding",
  "permit-agent-forwarding",
  "permit-X11-forwarding",
  "permit-user-rc"
)
export type SshExtension = typeof SshExtension.Type

/** An SSH user certificate signed for the session's lifetime with the listed principals. */
export const SshCertificate = Schema.Struct({
  type: Schema.Literal("ssh-certificate"),
  principals: Schema.NonEmptyArray(
    Schema.String.pipe(
      Schema.pattern(/^[a-z_][a-z0-9_-]{0,31}$/, {
        message: (issue) => `expected a unix user name such as deploy, got ${JSON.stringify(issue.actual)}`
      })
    )
  ),
  /** Vault name of the CA private key. */
  ca: SecretName,
  extensions: Schema.optional(Schema.Array(SshExtension))
})
export interface SshCertificate extends Schema.Schema.Type<typeof SshCertificate> {}

/** A command run by `aap exec` with secrets injected as environment variables. */
export const WrappedCommand = Schema.Struct({
  type: Schema.Literal("wrapped-command"),
  /** The allowed argv prefix (`[gh, pr]`). */
  command: Schema.NonEmptyArray(Schema.NonEmptyString),
  /** Environment variable → vault secret name. */
  env: Schema.Record({ key: EnvVarName, value: SecretName })
})
export interface WrappedCommand extends Schema.Schema.Type<typeof WrappedCommand> {}

export const Backing = Schema.Union(AwsSts, BearerToken, SshCertificate, WrappedCommand)
export type Backing = typeof Backing.Type
export type BackingType = Backing["type"]

// ---------------------------------------------------------------------------------------------
// The catalog
// ---------------------------------------------------------------------------------------------

export const Agent = Schema.Struct({
  id: AgentId,
  wallet: WalletId
})
export interface Agent extends Schema.Schema.Type<typeof Agent> {}

export const Operator = Schema.Struct({
  id: OperatorId
})
export interface Operator extends Schema.Schema.Type<typeof Operator> {}

/** Distinct operator approvals: 1 to 10. */
export const Approvals = Schema.Number.pipe(
  Schema.int(),
  Schema.between(1, 10, {
    message: (issue) =>
      `expected a whole number of approvals from 1 to 10 (high and critical capabilities always need at least one), got ${formatActual(issue.actual)}`
  })
)

export const Capability = Schema.Struct({
  id: CapabilityId,
  description: Schema.optional(Schema.String),
  tier: Tier,
  agents: Schema.NonEmptyArray(AgentId),
  ttl: Ttl,
  /**
   * Distinct operator approvals needed (high, critical). Defaults to 1 there; may be raised,
   * never set to 0; not allowed on low/medium (those tiers are auto-granted).
   */
  approvals: Schema.optional(Approvals),
  backing: Backing
})
export interface Capability extends Schema.Schema.Type<typeof Capability> {}

/** The whole catalog file. Shape only; `CatalogFile` adds the semantic rules of DESIGN §5. */
export const Catalog = Schema.Struct({
  schemaVersion: Schema.Literal(1),
  agents: Schema.Array(Agent),
  operators: Schema.Array(Operator),
  capabilities: Schema.Array(Capability)
}).annotations({
  identifier: "Catalog",
  title: "aap capability catalog",
  description: "Which agent may ask for what, at which tier, for how long, backed by what (DESIGN §5)."
})
export interface Catalog extends Schema.Schema.Type<typeof Catalog> {}
export interface CatalogEncoded extends Schema.Schema.Encoded<typeof Catalog> {}

/** The number of approvals a capability needs (0 for low/medium). */
export const requiredApprovals = (capability: Capability): number =>
  tierNeedsApproval(capability.tier) ? (capability.approvals ?? 1) : 0

// ---------------------------------------------------------------------------------------------
// Load errors (produced by `CatalogFile`; here so the HTTP contract needs no YAML)
// ---------------------------------------------------------------------------------------------

/** One problem in a catalog file. `line` and `column` are 1-based. */
export class CatalogIssue extends Schema.Class<CatalogIssue>("CatalogIssue")({
  file: Schema.String,
  line: Schema.Int,
  column: Schema.Int,
  /** `capabilities[2].ttl.max`; empty for the document itself. */
  path: Schema.String,
  message: Schema.String
}) {}

/** `file:line:column path: message`, the form editors and terminals link. */
export const formatIssue = (issue: CatalogIssue): string =>
  `${issue.file}:${issue.line}:${issue.column} ${issue.path === "" ? "" : `${issue.path}: `}${issue.message}`

/** The catalog file is invalid; `issues` lists every problem, in file order. */
export class CatalogInvalid extends Schema.TaggedError<CatalogInvalid>()(
  "CatalogInvalid",
  { file: Schema.String, issues: Schema.Array(CatalogIssue) },
  HttpApiSchema.annotations({ status: 422 })
) {
  override get message(): string {
    const n = this.issues.length
    return `${this.file}: ${n} error${n === 1 ? "" : "s"}\n${this.issues.map(formatIssue).join("\n")}`
  }
}

/** The catalog file cannot be read (missing, a directory, no permission). */
export class CatalogUnreadable extends Schema.TaggedError<CatalogUnreadable>()(
  "CatalogUnreadable",
  { file: Schema.String, reason: Schema.String },
  HttpApiSchema.annotations({ status: 422 })
) {
  override get message(): string {
    return `cannot read catalog ${this.file}: ${this.reason}`
  }
}

// ---------------------------------------------------------------------------------------------
// authorize
// ---------------------------------------------------------------------------------------------

/** What an agent asks for (`POST /v1/sessions`). */
export const AuthorizeRequest = Schema.Struct({
  capability: Schema.String,
  ttlSeconds: Schema.optional(Schema.Int.pipe(Schema.positive())),
  breakGlass: Schema.optional(Schema.Boolean),
  justification: Schema.optional(Schema.String.pipe(Schema.maxLength(1000)))
})
export interface AuthorizeRequest extends Schema.Schema.Type<typeof AuthorizeRequest> {}

const decisionFields = {
  agent: AgentId,
  capability: CapabilityId,
  tier: Tier,
  wallet: WalletId,
  ttlSeconds: Schema.Int,
  breakGlass: Schema.Boolean,
  justification: Schema.optional(Schema.String)
}

/** Low/medium: the session is active at once. */
export class GrantNow extends Schema.TaggedClass<GrantNow>()("GrantNow", decisionFields) {}

/** High/critical: the session waits for `approvals` distinct operators. */
export class NeedsApproval extends Schema.TaggedClass<NeedsApproval>()("NeedsApproval", {
  ...decisionFields,
  approvals: Schema.Int
}) {}

export const Decision = Schema.Union(GrantNow, NeedsApproval)
export type Decision = GrantNow | NeedsApproval

/** The requesting agent is not in the catalog. */
export class UnknownAgent extends Schema.TaggedError<UnknownAgent>()(
  "UnknownAgent",
  { agent: Schema.String },
  HttpApiSchema.annotations({ status: 403 })
) {
  override get message(): string {
    return `agent ${JSON.stringify(this.agent)} is not in the catalog`
  }
}

/** The capability is not in the catalog. */
export class UnknownCapability extends Schema.TaggedError<UnknownCapability>()(
  "UnknownCapability",
  { capability: Schema.String },
  HttpApiSchema.annotations({ status: 403 })
) {
  override get message(): string {
    return `capability ${JSON.stringify(this.capability)} is not in the catalog`
  }
}

/** The capability exists but does not list this agent. */
export class AgentNotAllowed extends Schema.TaggedError<AgentNotAllowed>()(
  "AgentNotAllowed",
  { agent: Schema.String, capability: Schema.String },
  HttpApiSchema.annotations({ status: 403 })
) {
  override get message(): string {
    return `agent ${JSON.stringify(this.agent)} may not request ${JSON.stringify(this.capability)}`
  }
}

/** The requested TTL is above the capability's `ttl.max`. */
export class TtlTooLong extends Schema.TaggedError<TtlTooLong>()(
  "TtlTooLong",
  { capability: Schema.String, requestedSeconds: Schema.Number, maxSeconds: Schema.Number },
  HttpApiSchema.annotations({ status: 403 })
) {
  override get message(): string {
    return `requested TTL ${this.requestedSeconds}s is above the maximum ${this.maxSeconds}s of ${JSON.stringify(this.capability)}`
  }
}

/** A critical capability was requested without `breakGlass: true`. */
export class BreakGlassRequired extends Schema.TaggedError<BreakGlassRequired>()(
  "BreakGlassRequired",
  { capability: Schema.String },
  HttpApiSchema.annotations({ status: 403 })
) {
  override get message(): string {
    return `capability ${JSON.stringify(this.capability)} is critical: request it with breakGlass: true and a justification`
  }
}

/** A critical capability was requested without a (non-blank) justification. */
export class JustificationRequired extends Schema.TaggedError<JustificationRequired>()(
  "JustificationRequired",
  { capability: Schema.String },
  HttpApiSchema.annotations({ status: 403 })
) {
  override get message(): string {
    return `capability ${JSON.stringify(this.capability)} is critical: a justification is required`
  }
}

/** The request itself is malformed (e.g. a TTL that is not a positive whole number of seconds). */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()(
  "InvalidRequest",
  { reason: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {
  override get message(): string {
    return `invalid request: ${this.reason}`
  }
}

export const Denial = Schema.Union(
  UnknownAgent,
  UnknownCapability,
  AgentNotAllowed,
  TtlTooLong,
  BreakGlassRequired,
  JustificationRequired,
  InvalidRequest
)
export type Denial =
  | UnknownAgent
  | UnknownCapability
  | AgentNotAllowed
  | TtlTooLong
  | BreakGlassRequired
  | JustificationRequired
  | InvalidRequest

/**
 * Decide a request against a (validated) catalog. Pure, no I/O.
 *
 * Order of checks: request shape (400) → agent known → capability known → agent listed →
 * TTL (default when absent, denied above `ttl.max`) → critical needs `breakGlass: true` and a
 * non-blank justification → low/medium grant now, high/critical need approvals.
 * `breakGlass` on a non-critical capability is recorded in the decision and changes nothing.
 */
export const authorize = (
  catalog: Catalog,
  agentId: string,
  request: AuthorizeRequest
): Either.Either<Decision, Denial> => {
  if (request.ttlSeconds !== undefined && !(Number.isInteger(request.ttlSeconds) && request.ttlSeconds > 0)) {
    return Either.left(new InvalidRequest({ reason: "ttlSeconds must be a positive whole number" }))
  }
  const agent = catalog.agents.find((a) => a.id === agentId)
  if (agent === undefined) return Either.left(new UnknownAgent({ agent: agentId }))
  const capability = catalog.capabilities.find((c) => c.id === request.capability)
  if (capability === undefined) return Either.left(new UnknownCapability({ capability: request.capability }))
  if (!capability.agents.includes(agent.id)) {
    return Either.left(new AgentNotAllowed({ agent: agent.id, capability: capability.id }))
  }
  const ttlSeconds = request.ttlSeconds ?? capability.ttl.default
  if (ttlSeconds > capability.ttl.max) {
    return Either.left(
      new TtlTooLong({
        capability: capability.id,
        requestedSeconds: ttlSeconds,
        maxSeconds: capability.ttl.max
      })
    )
  }
  const breakGlass = request.breakGlass === true
  const justification = request.justification?.trim()
  if (capability.tier === "critical") {
    if (!breakGlass) return Either.left(new BreakGlassRequired({ capability: capability.id }))
    if (justification === undefined || justification === "") {
      return Either.left(new JustificationRequired({ capability: capability.id }))
    }
  }
  const fields = {
    agent: agent.id,
    capability: capability.id,
    tier: capability.tier,
    wallet: agent.wallet,
    ttlSeconds,
    breakGlass,
    ...(justification !== undefined && justification !== "" ? { justification } : {})
  }
  const approvals = requiredApprovals(capability)
  return Either.right(approvals === 0 ? new GrantNow(fields) : new NeedsApproval({ ...fields, approvals }))
}

/** Find a capability by id. */
export const findCapability = (catalog: Catalog, capabilityId: string): Capability | undefined =>
  catalog.capabilities.find((c) => c.id === capabilityId)

/** Find an agent by id. */
export const findAgent = (catalog: Catalog, agentId: string): Agent | undefined =>
  catalog.agents.find((a) => a.id === agentId)

/** The capabilities an agent may request (`GET /v1/catalog`). */
export const capabilitiesFor = (catalog: Catalog, agentId: string): ReadonlyArray<Capability> =>
  catalog.capabilities.filter((c) => c.agents.some((a) => a === agentId))
