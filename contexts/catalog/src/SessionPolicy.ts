/**
 * Rendering an `aws-sts` backing into the inline session policy and session tags passed to
 * `AssumeRoleWithWebIdentity`. Pure. Variable values are validated ids, so no value can widen
 * a resource beyond the wallet prefix (no `/`, `*`, `?`, `$`, `..`).
 */
import { Data, Either } from "effect"
import type { AwsSts, TemplateVariable } from "./Catalog.js"
import { ID_PATTERN, TEMPLATE_VARIABLES } from "./Catalog.js"
import * as Template from "./internal/template.js"

/** STS rejects session policies whose plaintext (packed JSON) exceeds 2,048 characters. */
export const STS_POLICY_LIMIT = 2048

/** Session ids accepted as `${session}`: letters, digits, `-`, `_`, at most 64 characters. */
export const SESSION_PATTERN = /^[A-Za-z0-9_-]{1,64}$/

/** S3 bucket names (3–63 characters; lowercase letters, digits, `.`, `-`; no `..`). */
export const BUCKET_PATTERN = /^(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/

/** Values for the template variables. Buckets are only needed when a template uses them. */
export type Variables = { readonly [K in TemplateVariable]?: string }

/** The longest value each variable can take: used to check a catalog's policy size at load. */
export const worstCaseVariables: Required<Variables> = {
  wallet: "w".repeat(63),
  agent: "a".repeat(63),
  session: "s".repeat(64),
  vault_bucket: "v".repeat(63),
  memory_bucket: "m".repeat(63),
  audit_bucket: "b".repeat(63)
}

/** A template refers to a variable that does not exist, has no value, or the value is not a valid id. */
export class TemplateError extends Data.TaggedError("TemplateError")<{
  readonly template: string
  readonly reason: string
}> {
  override get message(): string {
    return `template ${JSON.stringify(this.template)}: ${this.reason}`
  }
}

/** The packed session policy is longer than STS accepts. */
export class SessionPolicyTooLarge extends Data.TaggedError("SessionPolicyTooLarge")<{
  readonly length: number
  readonly limit: number
}> {
  override get message(): string {
    return `the rendered session policy is ${this.length} characters; STS accepts at most ${this.limit} (packed JSON)`
  }
}

export interface PolicyStatement {
  readonly Effect: "Allow" | "Deny"
  readonly Action: ReadonlyArray<string>
  readonly Resource: ReadonlyArray<string>
  readonly Condition?: Readonly<Record<string, Readonly<Record<string, string | ReadonlyArray<string>>>>>
}

export interface PolicyDocument {
  readonly Version: "2012-10-17"
  readonly Statement: ReadonlyArray<PolicyStatement>
}

export interface SessionPolicy {
  readonly document: PolicyDocument
  /** Packed JSON, exactly what is sent as the `Policy` parameter. */
  readonly json: string
  /** Session tags rendered from `sessionTags`. */
  readonly tags: Readonly<Record<string, string>>
}

const isTemplateVariable = (name: string): name is TemplateVariable =>
  (TEMPLATE_VARIABLES as ReadonlyArray<string>).includes(name)

const valueProblem = (name: TemplateVariable, value: string): string | undefined => {
  switch (name) {
    case "wallet":
    case "agent":
      return ID_PATTERN.test(value) ? undefined : `value of \${${name}} is not a valid id`
    case "session":
      return SESSION_PATTERN.test(value) ? undefined : `value of \${session} is not a valid session id`
    default:
      return BUCKET_PATTERN.test(value) ? undefined : `value of \${${name}} is not a valid bucket name`
  }
}

/** Render one template with the given variables. */
export const renderTemplate = (
  template: string,
  variables: Variables
): Either.Either<string, TemplateError> => {
  const parsed = Template.parse(template)
  if (parsed._tag === "Error") return Either.left(new TemplateError({ template, reason: parsed.reason }))
  let out = ""
  for (const part of parsed.parts) {
    if ("literal" in part) {
      out += part.literal
      continue
    }
    const name = part.variable
    if (!isTemplateVariable(name)) {
      return Either.left(
        new TemplateError({
          template,
          reason: `unknown variable \${${name}}; allowed: ${TEMPLATE_VARIABLES.map((v) => `\${${v}}`).join(" ")}`
        })
      )
    }
    const value = variables[name]
    if (value === undefined)
      return Either.left(new TemplateError({ template, reason: `no value for \${${name}}` }))
    const problem = valueProblem(name, value)
    if (problem !== undefined) return Either.left(new TemplateError({ template, reason: problem }))
    out += value
  }
  return Either.right(out)
}

/** Render the session policy and session tags of an `aws-sts` backing. */
export const render = (
  backing: AwsSts,
  variables: Variables
): Either.Either<SessionPolicy, TemplateError | SessionPolicyTooLarge> =>
  Either.gen(function* () {
    const statements: Array<PolicyStatement> = []
    for (const statement of backing.statements) {
      const resources: Array<string> = []
      for (const resource of statement.resources) resources.push(yield* renderTemplate(resource, variables))
      const rendered: PolicyStatement = {
        Effect: statement.effect,
        Action: [...statement.actions],
        Resource: resources
      }
      if (statement.conditions === undefined) {
        statements.push(rendered)
        continue
      }
      const condition: Record<string, Record<string, string | ReadonlyArray<string>>> = {}
      for (const [operator, entries] of Object.entries(statement.conditions)) {
        const block: Record<string, string | ReadonlyArray<string>> = {}
        for (const [key, value] of Object.entries(entries)) {
          if (typeof value === "string") block[key] = yield* renderTemplate(value, variables)
          else {
            const values: Array<string> = []
            for (const v of value) values.push(yield* renderTemplate(v, variables))
            block[key] = values
          }
        }
        condition[operator] = block
      }
      statements.push({ ...rendered, Condition: condition })
    }
    const tags: Record<string, string> = {}
    for (const [key, value] of Object.entries(backing.sessionTags ?? {})) {
      tags[key] = yield* renderTemplate(value, variables)
    }
    const document: PolicyDocument = { Version: "2012-10-17", Statement: statements }
    const json = JSON.stringify(document)
    if (json.length > STS_POLICY_LIMIT) {
      return yield* Either.left(new SessionPolicyTooLarge({ length: json.length, limit: STS_POLICY_LIMIT }))
    }
    return { document, json, tags }
  })
