/**
 * STS early revocation (DESIGN §9, §12, ADR 0070). STS credentials cannot be revoked one by
 * one, so the worker keeps one inline policy, `aap-revoked-sessions`, on every Class A role:
 *
 * ```json
 * {"Version":"2012-10-17","Statement":[
 *   {"Sid":"AapRevokedSessions","Effect":"Deny","Action":"*","Resource":"*",
 *    "Condition":{"StringEquals":{"aws:PrincipalTag/aap_session":["ses_…","ses_…"]}}},
 *   {"Sid":"AapRevokedBefore","Effect":"Deny","Action":"*","Resource":"*",
 *    "Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-11-22T05:00:01Z"},
 *                 "StringLike":{"aws:PrincipalTag/aap_session":"ses_*"}}}
 * ]}
 * ```
 *
 * - The list holds the `aap_session` principal tag (set by the broker's OIDC token, DESIGN §9)
 *   of every revoked session of a capability on that role whose grant has not run out; an
 *   entry is pruned once the session's deadline passes (its credentials are dead anyway).
 * - IAM limits the inline policies of a role to 10,240 characters in total (whitespace not
 *   counted). The worker measures the role's other inline policies and fits the list into
 *   what is left, most recent revocations first. Revocations that do not fit are covered by
 *   the second statement: every aap credential of that role issued before the newest dropped
 *   revocation is denied (fail closed: unrevoked sessions issued before it must fetch new
 *   credentials). That statement disappears once every dropped session has expired.
 * - The policy is recomputed from the sessions on every run and written only when it differs;
 *   with nothing to deny it is deleted. Killing the worker mid-run leaves a valid policy
 *   (PutRolePolicy replaces the whole document atomically) and the next run converges.
 *
 * @since 0.1.0
 */
import { type CoordinationStore, CurrentCatalog, type Errors } from "@aap/agent-coordination"
import {
  DeleteRolePolicyCommand,
  GetRolePolicyCommand,
  IAMClient,
  type IAMClientConfig,
  ListRolePoliciesCommand,
  PutRolePolicyCommand
} from "@aws-sdk/client-iam"
import { Context, Data, DateTime, Effect, Layer, Option } from "effect"
import * as Progress from "./Progress.js"
import * as RevokedSessions from "./RevokedSessions.js"
import { WorkerMetrics } from "./WorkerMetrics.js"

/** The inline policy the worker owns on each Class A role. */
export const POLICY_NAME = "aap-revoked-sessions"
/** IAM's aggregate inline policy size per role (characters, whitespace excluded). */
export const ROLE_INLINE_POLICY_LIMIT = 10_240

export class Iam extends Context.Tag("@aap/worker/Iam")<Iam, { readonly client: IAMClient }>() {}

/** An IAM client (regionless service; `aws-global`), destroyed with the layer. */
export const layerIam = (config: IAMClientConfig = {}): Layer.Layer<Iam> =>
  Layer.scoped(
    Iam,
    Effect.map(
      Effect.acquireRelease(
        Effect.sync(() => new IAMClient({ region: "us-east-1", ...config })),
        (c) => Effect.sync(() => c.destroy())
      ),
      (client) => ({ client })
    )
  )

/** An IAM call failed (other than the policy being absent). */
export class IamError extends Data.TaggedError("IamError")<{
  readonly operation: string
  readonly role: string
  readonly code: string
}> {}

/** Even the cut-off statement alone does not fit beside the role's other inline policies. */
export class PolicyBudgetExceeded extends Data.TaggedError("PolicyBudgetExceeded")<{
  readonly role: string
  readonly available: number
  readonly needed: number
}> {}

export interface Entry {
  readonly session: string
  readonly revokedAt: DateTime.Utc
  readonly expiresAt: DateTime.Utc
}

/** IAM's size measure: characters without whitespace outside... and inside strings alike. */
export const policySize = (document: string): number => document.replace(/\s/g, "").length

const statement = (sessions: ReadonlyArray<string>) => ({
  Sid: "AapRevokedSessions",
  Effect: "Deny",
  Action: "*",
  Resource: "*",
  Condition: { StringEquals: { "aws:PrincipalTag/aap_session": [...sessions] } }
})

const cutoffStatement = (issuedBefore: string) => ({
  Sid: "AapRevokedBefore",
  Effect: "Deny",
  Action: "*",
  Resource: "*",
  Condition: {
    DateLessThan: { "aws:TokenIssueTime": issuedBefore },
    StringLike: { "aws:PrincipalTag/aap_session": "ses_*" }
  }
})

export interface Plan {
  /** The policy document, or none when there is nothing to deny (delete the policy). */
  readonly document: Option.Option<string>
  /** Sessions listed by tag. */
  readonly listed: ReadonlyArray<string>
  /** Sessions covered only by the issue-time cut-off. */
  readonly overflowed: ReadonlyArray<string>
  readonly issuedBefore: Option.Option<string>
}

/** Whole seconds, rounded up, so a token issued in the revocation's second is covered. */
const ceilIso = (d: DateTime.Utc): string =>
  new Date(Math.ceil(DateTime.toEpochMillis(d) / 1000) * 1000).toISOString().replace(/\.000Z$/, "Z")

const render = (listed: ReadonlyArray<string>, issuedBefore: Option.Option<string>): string =>
  JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      ...(listed.length > 0 ? [statement(listed)] : []),
      ...Option.match(issuedBefore, { onNone: () => [], onSome: (t) => [cutoffStatement(t)] })
    ]
  })

/**
 * The document for `entries` within `budget` characters: every entry listed when it fits;
 * otherwise the most recently revoked that fit, plus the cut-off at the newest dropped
 * revocation. Sessions are listed sorted, so equal inputs render equal documents.
 */
export const plan = (
  role: string,
  entries: ReadonlyArray<Entry>,
  budget: number
): Effect.Effect<Plan, PolicyBudgetExceeded> =>
  Effect.gen(function* () {
    if (entries.length === 0) {
      return { document: Option.none(), listed: [], overflowed: [], issuedBefore: Option.none() }
    }
    const all = [...new Set(entries.map((e) => e.session))].sort()
    const full = render(all, Option.none())
    if (policySize(full) <= budget) {
      return { document: Option.some(full), listed: all, overflowed: [], issuedBefore: Option.none() }
    }
    // Most recent revocations first; ties by id for determinism.
    const byRecency = [...entries].sort((a, b) => {
      const d = DateTime.toEpochMillis(b.revokedAt) - DateTime.toEpochMillis(a.revokedAt)
      return d !== 0 ? d : a.session < b.session ? -1 : 1
    })
    // Binary search for the longest prefix that fits with the cut-off of what is dropped.
    const attempt = (n: number) => {
      const keep = byRecency.slice(0, n)
      const dropped = byRecency.slice(n)
      const newestDropped = dropped.reduce(
        (m, e) => (DateTime.greaterThan(e.revokedAt, m) ? e.revokedAt : m),
        dropped[0]?.revokedAt ?? DateTime.unsafeMake(0)
      )
      const issuedBefore = ceilIso(newestDropped)
      const listed = [...new Set(keep.map((e) => e.session))].sort()
      return { listed, dropped, issuedBefore, document: render(listed, Option.some(issuedBefore)) }
    }
    let lo = 0
    let hi = byRecency.length - 1
    if (policySize(attempt(0).document) > budget) {
      return yield* new PolicyBudgetExceeded({
        role,
        available: budget,
        needed: policySize(attempt(0).document)
      })
    }
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2)
      if (policySize(attempt(mid).document) <= budget) lo = mid
      else hi = mid - 1
    }
    const best = attempt(lo)
    const listedSet = new Set(best.listed)
    return {
      document: Option.some(best.document),
      listed: best.listed,
      overflowed: [...new Set(best.dropped.map((e) => e.session))].filter((s) => !listedSet.has(s)).sort(),
      issuedBefore: Option.some(best.issuedBefore)
    }
  })

/** `arn:aws:iam::123456789012:role/path/name` → `name` (IAM APIs take the name, not the path). */
export const roleName = (arn: string): string => arn.slice(arn.lastIndexOf("/") + 1)

const errorCode = (e: unknown): string =>
  typeof e === "object" && e !== null && "name" in e && typeof e.name === "string" ? e.name : "Unknown"

const call = <A>(operation: string, role: string, f: (client: IAMClient) => Promise<A>) =>
  Effect.flatMap(Iam, ({ client }) =>
    Effect.tryPromise({
      try: () => f(client),
      catch: (e) => new IamError({ operation, role, code: errorCode(e) })
    })
  )

const decodeDocument = (doc: string | undefined): string => {
  if (doc === undefined) return ""
  try {
    return decodeURIComponent(doc)
  } catch {
    return doc
  }
}

const sameDocument = (a: string, b: string): boolean => {
  try {
    return JSON.stringify(JSON.parse(a)) === JSON.stringify(JSON.parse(b))
  } catch {
    return false
  }
}

export interface RoleResult {
  readonly role: string
  readonly listed: number
  readonly overflowed: number
  readonly action: "put" | "delete" | "unchanged"
}

/** Bring one role's deny policy to `entries`. */
export const syncRole = (
  roleArn: string,
  entries: ReadonlyArray<Entry>,
  limit: number = ROLE_INLINE_POLICY_LIMIT
): Effect.Effect<RoleResult, IamError | PolicyBudgetExceeded, Iam | WorkerMetrics> =>
  Effect.gen(function* () {
    const metrics = yield* WorkerMetrics
    const RoleName = roleName(roleArn)
    const names: Array<string> = []
    let marker: string | undefined
    do {
      const page = yield* call("ListRolePolicies", RoleName, (c) =>
        c.send(new ListRolePoliciesCommand({ RoleName, ...(marker === undefined ? {} : { Marker: marker }) }))
      )
      names.push(...(page.PolicyNames ?? []))
      marker = page.IsTruncated === true ? page.Marker : undefined
    } while (marker !== undefined)
    let others = 0
    let current: Option.Option<string> = Option.none()
    for (const PolicyName of names) {
      const got = yield* call("GetRolePolicy", RoleName, (c) =>
        c.send(new GetRolePolicyCommand({ RoleName, PolicyName }))
      )
      const doc = decodeDocument(got.PolicyDocument)
      if (PolicyName === POLICY_NAME) current = Option.some(doc)
      else others += policySize(doc)
    }
    const p = yield* plan(RoleName, entries, limit - others)
    yield* metrics.set("aap_worker_sts_deny_entries", p.listed.length, { role: RoleName })
    if (p.overflowed.length > 0) {
      yield* metrics.inc("aap_worker_sts_deny_overflow_total", { role: RoleName })
      yield* Effect.logWarning(
        "deny list exceeds the role's inline policy budget; using an issue-time cut-off"
      ).pipe(
        Effect.annotateLogs({
          role: RoleName,
          listed: p.listed.length,
          overflowed: p.overflowed.length,
          issuedBefore: Option.getOrElse(p.issuedBefore, () => "")
        })
      )
    }
    const base = { role: RoleName, listed: p.listed.length, overflowed: p.overflowed.length }
    if (Option.isNone(p.document)) {
      if (Option.isNone(current)) return { ...base, action: "unchanged" as const }
      yield* call("DeleteRolePolicy", RoleName, (c) =>
        c.send(new DeleteRolePolicyCommand({ RoleName, PolicyName: POLICY_NAME }))
      ).pipe(
        Effect.catchIf(
          (e) => e.code === "NoSuchEntityException",
          () => Effect.void
        )
      )
      yield* metrics.inc("aap_worker_sts_policy_writes_total", { role: RoleName, operation: "delete" })
      return { ...base, action: "delete" as const }
    }
    const document = p.document.value
    if (Option.isSome(current) && sameDocument(current.value, document)) {
      return { ...base, action: "unchanged" as const }
    }
    yield* call("PutRolePolicy", RoleName, (c) =>
      c.send(new PutRolePolicyCommand({ RoleName, PolicyName: POLICY_NAME, PolicyDocument: document }))
    )
    yield* metrics.inc("aap_worker_sts_policy_writes_total", { role: RoleName, operation: "put" })
    return { ...base, action: "put" as const }
  })

export interface Options {
  /** How far back revocations are read; must cover the longest grant. Default 24 h. */
  readonly lookbackSeconds?: number | undefined
  /** Default {@link ROLE_INLINE_POLICY_LIMIT}. */
  readonly policySizeLimit?: number | undefined
}

const JOB = "sts-deny"

/**
 * One pass over every Class A role of the catalog (and every role the worker managed before,
 * so a capability removed from the catalog has its policy cleaned up).
 */
export const run = (
  options: Options = {}
): Effect.Effect<
  ReadonlyArray<RoleResult>,
  IamError | PolicyBudgetExceeded | Errors.Unavailable | Progress.ProgressError,
  | Iam
  | WorkerMetrics
  | CurrentCatalog.CurrentCatalog
  | CoordinationStore.CoordinationStore
  | Progress.Progress
> =>
  Effect.gen(function* () {
    const catalog = yield* Effect.flatMap(CurrentCatalog.CurrentCatalog, (c) => c.get)
    const now = yield* DateTime.now
    const roleOf = new Map<string, string>()
    for (const c of catalog.capabilities)
      if (c.backing.type === "aws-sts") roleOf.set(c.id, c.backing.roleArn)
    const progress = yield* Progress.Progress
    const known = yield* progress.get(JOB, "roles")
    const previous = Option.match(known, {
      onNone: () => [] as ReadonlyArray<string>,
      onSome: (e) =>
        Array.isArray(e.value.roles) ? e.value.roles.filter((r): r is string => typeof r === "string") : []
    })
    const roles = [...new Set([...roleOf.values(), ...previous])].sort()
    // Record the roles before touching them, so a killed run still cleans them up later.
    yield* Progress.set(JOB, "roles", { roles })
    const revoked = yield* RevokedSessions.list(now, options.lookbackSeconds ?? 24 * 3600)
    const byRole = new Map<string, Array<Entry>>()
    for (const s of revoked) {
      const role = roleOf.get(s.capability)
      if (role === undefined) continue
      const list = byRole.get(role) ?? []
      list.push({ session: s.id, revokedAt: s.revokedAt, expiresAt: s.expiresAt })
      byRole.set(role, list)
    }
    const results: Array<RoleResult> = []
    for (const role of roles) {
      results.push(yield* syncRole(role, byRole.get(role) ?? [], options.policySizeLimit))
    }
    // Roles that are gone from the catalog and now hold no policy need no further visits.
    const still = roles.filter((r) => [...roleOf.values()].includes(r))
    if (still.length !== roles.length) yield* Progress.set(JOB, "roles", { roles: still })
    return results
  }).pipe(Effect.withSpan("StsDenyList.run"))
