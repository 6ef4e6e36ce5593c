// biome-ignore-all lint/suspicious/noTemplateCurlyInString: catalog templates are written ${variable}
/**
 * The semantic rules of DESIGN §5, run on the raw document next to the shape check so that one
 * pass reports every error. Each part (an agent, a capability's tier, ttl, backing) is decoded
 * on its own, so a broken field elsewhere does not hide a rule violation here.
 */
import { Either, Schema } from "effect"
import * as Catalog from "../Catalog.js"
import * as SessionPolicy from "../SessionPolicy.js"
import * as Duration from "./duration.js"
import type { Path } from "./positions.js"
import * as Template from "./template.js"

export interface RuleIssue {
  readonly path: Path
  readonly message: string
}

const isRecord = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

const decode = <A, I>(schema: Schema.Schema<A, I>, u: unknown): A | undefined => {
  const result = Schema.decodeUnknownEither(schema)(u)
  return Either.isRight(result) ? result.right : undefined
}

const elements = (root: Record<string, unknown>, key: string): ReadonlyArray<unknown> => {
  const value = root[key]
  return Array.isArray(value) ? value : []
}

const checkUnique = (
  issues: Array<RuleIssue>,
  items: ReadonlyArray<unknown>,
  collection: string,
  kind: string
): Set<string> => {
  const first = new Map<string, number>()
  items.forEach((item, index) => {
    if (!isRecord(item) || typeof item.id !== "string") return
    const seen = first.get(item.id)
    if (seen === undefined) first.set(item.id, index)
    else {
      issues.push({
        path: [collection, index, "id"],
        message: `duplicate ${kind} id ${JSON.stringify(item.id)}; first declared at ${collection}[${seen}]`
      })
    }
  })
  return new Set(first.keys())
}

const WALLET_SCOPED = new RegExp(
  `^arn:aws[a-z-]*:s3:::\\$\\{(${Catalog.WALLET_SCOPED_BUCKETS.join("|")})\\}/\\$\\{wallet\\}(?:/.*)?$`
)

const ALLOWED = Catalog.TEMPLATE_VARIABLES.map((v) => `\${${v}}`).join(", ")

const BUCKET_ONLY = new RegExp(`^arn:aws[a-z-]*:s3:::\\$\\{(${Catalog.WALLET_SCOPED_BUCKETS.join("|")})\\}$`)

/**
 * A bucket-level resource is fenced when the statement limits `s3:prefix` (StringLike or
 * StringEquals) to values inside the wallet. IAM ANDs every condition, so others only narrow.
 */
const prefixValues = (conditions: Record<string, unknown>): ReadonlyArray<unknown> => {
  const values: Array<unknown> = []
  for (const operator of ["StringLike", "StringEquals"]) {
    const block = conditions[operator]
    if (!isRecord(block) || block["s3:prefix"] === undefined) continue
    const value = block["s3:prefix"]
    values.push(...(Array.isArray(value) ? value : [value]))
  }
  return values
}

const insideWallet = (v: unknown): boolean =>
  typeof v === "string" && (v === "${wallet}" || v.startsWith("${wallet}/"))

const checkTemplate = (issues: Array<RuleIssue>, path: Path, template: string): void => {
  const parsed = Template.parse(template)
  if (parsed._tag === "Error") {
    issues.push({
      path,
      message: `invalid template ${JSON.stringify(template)}: ${parsed.reason}; expected only ${ALLOWED} (IAM policy variables such as \${aws:username} are not supported)`
    })
    return
  }
  for (const part of parsed.parts) {
    if (
      "variable" in part &&
      !(Catalog.TEMPLATE_VARIABLES as ReadonlyArray<string>).includes(part.variable)
    ) {
      issues.push({
        path,
        message: `unknown template variable \${${part.variable}}; expected one of ${ALLOWED}`
      })
    }
  }
}

const checkAwsSts = (issues: Array<RuleIssue>, base: Path, raw: Record<string, unknown>): void => {
  const before = issues.length
  const statements = Array.isArray(raw.statements) ? raw.statements : []
  statements.forEach((statement, s) => {
    if (!isRecord(statement)) return
    const conditions = isRecord(statement.conditions) ? statement.conditions : {}
    for (const [operator, entries] of Object.entries(conditions)) {
      if (!isRecord(entries)) continue
      for (const [key, value] of Object.entries(entries)) {
        const path = [...base, "statements", s, "conditions", operator, key]
        if (typeof value === "string") checkTemplate(issues, path, value)
        else if (Array.isArray(value)) {
          value.forEach((v, i) => {
            if (typeof v === "string") checkTemplate(issues, [...path, i], v)
          })
        }
      }
    }
    if (!Array.isArray(statement.resources)) return
    statement.resources.forEach((resource, r) => {
      if (typeof resource !== "string") return
      const path = [...base, "statements", s, "resources", r]
      checkTemplate(issues, path, resource)
      // A Deny statement only narrows: the wallet fence is about what is allowed.
      if (statement.effect === "Deny") return
      const used = Template.variables(resource)
      const scoped = Catalog.WALLET_SCOPED_BUCKETS.filter((bucket) => used.includes(bucket))
      if (scoped.length === 0 || WALLET_SCOPED.test(resource)) return
      const bucket = scoped[0]!
      if (BUCKET_ONLY.test(resource)) {
        const values = prefixValues(conditions)
        const outside = values.filter((v) => !insideWallet(v))
        if (values.length > 0 && outside.length === 0) return
        if (outside.length > 0) {
          issues.push({
            path,
            message: `the s3:prefix condition on the bucket \${${bucket}} must stay inside the wallet ("\${wallet}/..."); ${outside.map((v) => JSON.stringify(v)).join(", ")} does not`
          })
          return
        }
        issues.push({
          path,
          message: `the bucket \${${bucket}} itself lists every wallet's keys: add conditions: { StringLike: { "s3:prefix": ["\${wallet}/*"] } } to this statement, or use arn:aws:s3:::\${${bucket}}/\${wallet}/...`
        })
        return
      }
      issues.push({
        path,
        message: `resource on the wallet-scoped bucket \${${bucket}} must be limited to the wallet prefix: expected arn:aws:s3:::\${${bucket}}/\${wallet} or arn:aws:s3:::\${${bucket}}/\${wallet}/..., got ${JSON.stringify(resource)}`
      })
    })
  })
  if (isRecord(raw.sessionTags)) {
    for (const [key, value] of Object.entries(raw.sessionTags)) {
      if (typeof value === "string") checkTemplate(issues, [...base, "sessionTags", key], value)
    }
  }
  const backing = decode(Catalog.AwsSts, raw)
  if (backing !== undefined && issues.length === before) {
    const rendered = SessionPolicy.render(backing, SessionPolicy.worstCaseVariables)
    if (Either.isLeft(rendered) && rendered.left._tag === "SessionPolicyTooLarge") {
      issues.push({
        path: [...base, "statements"],
        message: `the session policy can reach ${rendered.left.length} characters with the longest allowed ids; STS accepts at most ${rendered.left.limit} (packed JSON): merge statements or shorten resources`
      })
    }
  }
}

/** STS's shortest `DurationSeconds`; delivery refuses a session with less left (ADR 0045). */
const STS_MINIMUM_SECONDS = 900

const checkCapability = (
  issues: Array<RuleIssue>,
  raw: Record<string, unknown>,
  index: number,
  agentIds: ReadonlySet<string>,
  operatorCount: number
): void => {
  const base = ["capabilities", index]
  if (Array.isArray(raw.agents)) {
    raw.agents.forEach((agent, a) => {
      if (typeof agent === "string" && !agentIds.has(agent)) {
        issues.push({
          path: [...base, "agents", a],
          message: `unknown agent ${JSON.stringify(agent)}; expected one of the ids under agents (${[...agentIds].map((id) => JSON.stringify(id)).join(", ") || "none declared"})`
        })
      }
    })
  }
  const tier = decode(Catalog.Tier, raw.tier)
  const ttl = decode(Catalog.Ttl, raw.ttl)
  if (ttl !== undefined && ttl.default > ttl.max) {
    issues.push({
      path: [...base, "ttl", "default"],
      message: `default ${Duration.format(ttl.default)} is above max ${Duration.format(ttl.max)}; expected default <= max`
    })
  }
  const backing = raw.backing
  const backingType =
    typeof backing === "object" && backing !== null ? (backing as Record<string, unknown>).type : undefined
  if (ttl !== undefined && backingType === "aws-sts" && ttl.default < STS_MINIMUM_SECONDS) {
    issues.push({
      path: [...base, "ttl", "default"],
      message: `default ${Duration.format(ttl.default)} is below 15m; expected default >= 15m for an aws-sts capability (STS issues credentials for at least 900 s, and aap never issues credentials that outlive their session)`
    })
  }
  if (ttl !== undefined && tier !== undefined && ttl.max > Catalog.tierCeilingSeconds[tier]) {
    issues.push({
      path: [...base, "ttl", "max"],
      message: `max ${Duration.format(ttl.max)} is above the ${tier} tier ceiling of ${Duration.format(Catalog.tierCeilingSeconds[tier])}`
    })
  }
  if (tier !== undefined) {
    const approvals = decode(Catalog.Approvals, raw.approvals)
    if (!Catalog.tierNeedsApproval(tier) && raw.approvals !== undefined) {
      issues.push({
        path: [...base, "approvals"],
        message: `approvals are not allowed on a ${tier} capability (low and medium are granted at once); use tier high or critical to require approval`
      })
    } else if (Catalog.tierNeedsApproval(tier)) {
      const needed = approvals ?? (raw.approvals === undefined ? 1 : undefined)
      if (needed !== undefined && needed > operatorCount) {
        issues.push({
          path: raw.approvals === undefined ? [...base, "tier"] : [...base, "approvals"],
          message: `a ${tier} capability needs ${needed} distinct operator approval${needed === 1 ? "" : "s"}, but the catalog declares ${operatorCount} operator${operatorCount === 1 ? "" : "s"}`
        })
      }
    }
  }
  if (isRecord(raw.backing) && raw.backing.type === "aws-sts")
    checkAwsSts(issues, [...base, "backing"], raw.backing)
  if (isRecord(raw.backing) && raw.backing.type === "bearer-token" && isRecord(raw.backing.proxy))
    checkProxyConnect(issues, [...base, "backing", "proxy"], raw.backing.proxy)
}

/**
 * `proxy.connect` (ADR 0081): ports in range, no duplicates, and never the upstream's own
 * host:port (that one is intercepted with the operator CA or refused; a blind tunnel to it
 * would let the agent reach the upstream without the broker's key injection and allow-lists).
 */
const checkProxyConnect = (issues: Array<RuleIssue>, base: Path, proxy: Record<string, unknown>): void => {
  if (!Array.isArray(proxy.connect)) return
  let upstream: string | undefined
  if (typeof proxy.upstream === "string") {
    try {
      const u = new URL(proxy.upstream)
      upstream = `${u.hostname.toLowerCase()}:${u.port === "" ? 443 : u.port}`
    } catch {
      upstream = undefined
    }
  }
  const seen = new Set<string>()
  proxy.connect.forEach((entry, i) => {
    if (typeof entry !== "string") return
    const colon = entry.lastIndexOf(":")
    const port = Number(entry.slice(colon + 1))
    const target = `${entry.slice(0, colon).toLowerCase()}:${port}`
    if (colon !== -1 && (!Number.isInteger(port) || port < 1 || port > 65535)) {
      issues.push({
        path: [...base, "connect", i],
        message: `port ${entry.slice(colon + 1)} is out of range; expected 1 to 65535`
      })
      return
    }
    if (upstream !== undefined && target === upstream) {
      issues.push({
        path: [...base, "connect", i],
        message: `${JSON.stringify(entry)} is the upstream's own host: CONNECT to it is intercepted with the operator CA (AAP_PROXY_CA_CERT) or refused, never tunnelled blind; remove it from connect`
      })
      return
    }
    if (seen.has(target)) {
      issues.push({
        path: [...base, "connect", i],
        message: `duplicate CONNECT target ${JSON.stringify(entry)}`
      })
    }
    seen.add(target)
  })
}

/** Every semantic issue of a raw catalog document. */
export const check = (root: unknown): ReadonlyArray<RuleIssue> => {
  if (!isRecord(root)) return []
  const issues: Array<RuleIssue> = []
  const agentIds = checkUnique(issues, elements(root, "agents"), "agents", "agent")
  const operatorIds = checkUnique(issues, elements(root, "operators"), "operators", "operator")
  checkUnique(issues, elements(root, "capabilities"), "capabilities", "capability")
  elements(root, "capabilities").forEach((raw, index) => {
    if (isRecord(raw)) checkCapability(issues, raw, index, agentIds, operatorIds.size)
  })
  return issues
}
