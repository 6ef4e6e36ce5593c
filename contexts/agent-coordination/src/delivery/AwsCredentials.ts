/**
 * Class A delivery: `AssumeRoleWithWebIdentity` with the broker's own web-identity token, the
 * catalog role and a session policy rendered from the catalog statements (DESIGN §9).
 *
 * SDK errors are mapped here, once, into `StsFailure`; nothing of the SDK leaks further.
 *
 * @since 0.1.0
 */
import {
  AssumeRoleWithWebIdentityCommand,
  type AssumeRoleWithWebIdentityCommandInput,
  STSClient
} from "@aws-sdk/client-sts"
import { Context, Data, Effect, Either, Layer, Redacted } from "effect"

/** STS refuses `DurationSeconds` below 15 minutes. */
export const STS_MIN_DURATION_SECONDS = 900

/** STS's own ceiling (the role's `MaxSessionDuration` may be lower; configure `maxDurationSeconds`). */
export const STS_MAX_DURATION_SECONDS = 43_200

/** STS answered, and said no (trust policy, token, policy document), or could not be reached. */
export class StsFailure extends Data.TaggedError("StsFailure")<{
  readonly kind: "refused" | "unreachable"
  /** The STS error code (`InvalidIdentityToken`, `AccessDenied`, …); never a message body. */
  readonly code: string
}> {}

/** The session has less time left than the shortest credential STS can issue (ADR 0045). */
export class TooCloseToExpiry extends Data.TaggedError("TooCloseToExpiry")<{
  readonly remainingSeconds: number
  readonly minimumSeconds: number
}> {}

/** One STS client per region, shared by all deliveries. */
export class StsClients extends Context.Tag("@aap/agent-coordination/delivery/StsClients")<
  StsClients,
  { readonly forRegion: (region: string) => STSClient }
>() {}

/** Real clients (default credential chain is not needed: the call is authorized by the token). */
export const layerStsClients: Layer.Layer<StsClients> = Layer.scoped(
  StsClients,
  Effect.acquireRelease(
    Effect.sync(() => new Map<string, STSClient>()),
    (clients) =>
      Effect.sync(() => {
        for (const c of clients.values()) c.destroy()
      })
  ).pipe(
    Effect.map((clients) =>
      StsClients.of({
        forRegion: (region) => {
          let client = clients.get(region)
          if (client === undefined) {
            client = new STSClient({ region, maxAttempts: 2 })
            clients.set(region, client)
          }
          return client
        }
      })
    )
  )
)

/**
 * `RoleSessionName` for a session: `aap.<agent>.<session>`, charset `[\w+=,.@-]`, at most 64
 * characters. The session id is always kept whole (CloudTrail correlation); the agent part is
 * shortened when needed.
 */
export const roleSessionName = (session: string, agent: string): string => {
  const clean = (s: string) => s.replace(/[^\w+=,.@-]/g, "-")
  const sessionPart = clean(session).slice(0, 58)
  const room = 64 - "aap..".length - sessionPart.length
  const agentPart = clean(agent).slice(0, Math.max(0, room))
  return agentPart === "" ? `aap.${sessionPart}` : `aap.${agentPart}.${sessionPart}`
}

/**
 * `DurationSeconds` for a session with `remainingSeconds` left: never longer than the session
 * (nor `maxDurationSeconds`), and refused below STS's 900-second floor rather than rounded
 * up past the session's end (ADR 0045).
 */
export const durationFor = (
  remainingSeconds: number,
  maxDurationSeconds: number = STS_MAX_DURATION_SECONDS
): Either.Either<number, TooCloseToExpiry> => {
  const remaining = Math.floor(remainingSeconds)
  if (remaining < STS_MIN_DURATION_SECONDS) {
    return Either.left(
      new TooCloseToExpiry({
        remainingSeconds: Math.max(0, remaining),
        minimumSeconds: STS_MIN_DURATION_SECONDS
      })
    )
  }
  return Either.right(Math.min(remaining, maxDurationSeconds, STS_MAX_DURATION_SECONDS))
}

export interface AssumeInput {
  readonly region: string
  readonly roleArn: string
  readonly roleSessionName: string
  readonly webIdentityToken: Redacted.Redacted<string>
  /** Packed JSON session policy (`SessionPolicy.render(...).json`). */
  readonly policy: string
  readonly durationSeconds: number
}

export interface AwsCredentialSet {
  readonly accessKeyId: string
  readonly secretAccessKey: Redacted.Redacted<string>
  readonly sessionToken: Redacted.Redacted<string>
  readonly expiration: Date
  readonly assumedRoleArn: string
}

const REFUSED = new Set([
  "InvalidIdentityToken",
  "InvalidIdentityTokenException",
  "ExpiredTokenException",
  "ExpiredToken",
  "IDPRejectedClaim",
  "IDPRejectedClaimException",
  "AccessDenied",
  "AccessDeniedException",
  "MalformedPolicyDocument",
  "MalformedPolicyDocumentException",
  "PackedPolicyTooLarge",
  "PackedPolicyTooLargeException",
  "RegionDisabledException",
  "ValidationError",
  "JWTPayloadSizeExceededException",
  "SessionDurationEscalationException"
])

const codeOf = (e: unknown): string =>
  typeof e === "object" && e !== null && "name" in e && typeof e.name === "string"
    ? e.name.replace(/[^A-Za-z0-9]/g, "").slice(0, 64)
    : "Unknown"

/** The exact `AssumeRoleWithWebIdentity` input for `input` (exported for tests and docs). */
export const commandInput = (input: AssumeInput): AssumeRoleWithWebIdentityCommandInput => ({
  RoleArn: input.roleArn,
  RoleSessionName: input.roleSessionName,
  WebIdentityToken: Redacted.value(input.webIdentityToken),
  Policy: input.policy,
  DurationSeconds: input.durationSeconds
})

/** Call STS. The token is revealed only into the SDK request. */
export const assume = (input: AssumeInput): Effect.Effect<AwsCredentialSet, StsFailure, StsClients> =>
  Effect.gen(function* () {
    const clients = yield* StsClients
    const client = clients.forRegion(input.region)
    const out = yield* Effect.tryPromise({
      try: (signal) =>
        client.send(new AssumeRoleWithWebIdentityCommand(commandInput(input)), { abortSignal: signal }),
      catch: (e) => {
        const code = codeOf(e)
        return new StsFailure({ kind: REFUSED.has(code) ? "refused" : "unreachable", code })
      }
    })
    const c = out.Credentials
    if (
      c?.AccessKeyId === undefined ||
      c.SecretAccessKey === undefined ||
      c.SessionToken === undefined ||
      c.Expiration === undefined
    ) {
      return yield* new StsFailure({ kind: "unreachable", code: "IncompleteResponse" })
    }
    return {
      accessKeyId: c.AccessKeyId,
      secretAccessKey: Redacted.make(c.SecretAccessKey),
      sessionToken: Redacted.make(c.SessionToken),
      expiration: c.Expiration,
      assumedRoleArn: out.AssumedRoleUser?.Arn ?? ""
    }
  })
