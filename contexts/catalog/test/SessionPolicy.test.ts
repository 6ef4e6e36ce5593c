// biome-ignore-all lint/suspicious/noTemplateCurlyInString: catalog templates are written ${variable}
import { assert, describe, it } from "@effect/vitest"
import { Either, FastCheck as fc, Schema } from "effect"
import { Catalog, SessionPolicy } from "../src/index.js"

const sts = (resources: ReadonlyArray<string>, extra: Record<string, unknown> = {}): Catalog.AwsSts =>
  Schema.decodeUnknownSync(Catalog.AwsSts)({
    type: "aws-sts",
    roleArn: "arn:aws:iam::123456789012:role/aap-memory",
    region: "eu-central-1",
    statements: [{ actions: ["s3:GetObject", "s3:PutObject"], resources }],
    ...extra
  })

const vars: SessionPolicy.Variables = {
  wallet: "codex",
  agent: "codex",
  session: "01JD0000000000000000000000",
  memory_bucket: "acme-agent-memory"
}

describe("SessionPolicy.render", () => {
  it("renders the packed IAM policy and the session tags", () => {
    const policy = Either.getOrThrow(
      SessionPolicy.render(
        sts(["arn:aws:s3:::${memory_bucket}/${wallet}/*"], {
          sessionTags: { aap_agent: "${agent}", team: "ml" }
        }),
        vars
      )
    )
    assert.strictEqual(
      policy.json,
      '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":["arn:aws:s3:::acme-agent-memory/codex/*"]}]}'
    )
    assert.deepStrictEqual(policy.tags, { aap_agent: "codex", team: "ml" })
  })

  it("renders conditions with variables, and a Deny statement as written", () => {
    const backing = Schema.decodeUnknownSync(Catalog.AwsSts)({
      type: "aws-sts",
      roleArn: "arn:aws:iam::123456789012:role/aap-memory",
      region: "eu-central-1",
      statements: [
        {
          actions: ["s3:ListBucket"],
          resources: ["arn:aws:s3:::${memory_bucket}"],
          conditions: {
            StringLike: { "s3:prefix": ["${wallet}/*"] },
            StringEquals: { "aws:RequestedRegion": "eu-central-1" }
          }
        },
        {
          effect: "Deny",
          actions: ["s3:DeleteObject"],
          resources: ["arn:aws:s3:::${memory_bucket}/${wallet}/keep/*"]
        }
      ]
    })
    const policy = Either.getOrThrow(SessionPolicy.render(backing, vars))
    assert.deepStrictEqual(policy.document.Statement, [
      {
        Effect: "Allow",
        Action: ["s3:ListBucket"],
        Resource: ["arn:aws:s3:::acme-agent-memory"],
        Condition: {
          StringLike: { "s3:prefix": ["codex/*"] },
          StringEquals: { "aws:RequestedRegion": "eu-central-1" }
        }
      },
      {
        Effect: "Deny",
        Action: ["s3:DeleteObject"],
        Resource: ["arn:aws:s3:::acme-agent-memory/codex/keep/*"]
      }
    ])
  })

  it("refuses unknown variables, missing values and invalid values", () => {
    const reason = (resource: string, v: SessionPolicy.Variables = vars) => {
      const result = SessionPolicy.render(sts([resource]), v)
      return Either.isLeft(result) && result.left._tag === "TemplateError" ? result.left.reason : "rendered"
    }
    assert.match(reason("arn:aws:s3:::${bucket}/*"), /unknown variable \$\{bucket\}/)
    assert.match(reason("arn:aws:s3:::${aws:username}/*"), /not a catalog variable/)
    assert.match(reason("arn:aws:s3:::${vault_bucket}/${wallet}/*"), /no value for \$\{vault_bucket\}/)
    assert.match(
      reason("arn:aws:s3:::${memory_bucket}/${wallet}/*", { ...vars, wallet: "a/b" }),
      /not a valid id/
    )
    assert.match(
      reason("arn:aws:s3:::${memory_bucket}/${wallet}/*", { ...vars, memory_bucket: "a..b" }),
      /bucket/
    )
    assert.match(reason("arn:aws:s3:::${memory_bucket/*"), /unterminated/)
  })

  it("fails with SessionPolicyTooLarge above 2,048 packed characters, and accepts exactly 2,048", () => {
    const base = Either.getOrThrow(SessionPolicy.render(sts(["arn:aws:s3:::x/"]), vars)).json.length
    const fill = (n: number) => `arn:aws:s3:::x/${"a".repeat(n)}`
    const exact = SessionPolicy.render(sts([fill(2048 - base)]), vars)
    assert.strictEqual(Either.getOrThrow(exact).json.length, 2048)
    const over = SessionPolicy.render(sts([fill(2049 - base)]), vars)
    assert.isTrue(Either.isLeft(over))
    if (Either.isLeft(over)) {
      assert.strictEqual(over.left._tag, "SessionPolicyTooLarge")
      if (over.left._tag === "SessionPolicyTooLarge") assert.strictEqual(over.left.length, 2049)
      assert.include(over.left.message, "2049")
    }
  })

  it("property: a valid wallet id always renders inside the wallet prefix", () => {
    fc.assert(
      fc.property(fc.stringMatching(Catalog.ID_PATTERN), (wallet) => {
        const policy = Either.getOrThrow(
          SessionPolicy.render(sts(["arn:aws:s3:::${memory_bucket}/${wallet}/*"]), { ...vars, wallet })
        )
        const resource = policy.document.Statement[0]!.Resource[0]!
        assert.strictEqual(resource, `arn:aws:s3:::acme-agent-memory/${wallet}/*`)
      })
    )
  })

  it("property: no value, whatever it is, renders outside the wallet prefix", () => {
    const prefix = "arn:aws:s3:::acme-agent-memory/"
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.stringMatching(/^[a-z0-9./*?$#{}-]{1,12}$/),
          fc.constantFrom("..", "*", "a/b", "co*")
        ),
        fc.oneof(fc.string(), fc.constantFrom("x", "01JD", "*")),
        (wallet, session) => {
          const result = SessionPolicy.render(sts(["arn:aws:s3:::${memory_bucket}/${wallet}/${session}/*"]), {
            ...vars,
            wallet,
            session
          })
          if (Either.isLeft(result)) return
          const resource = result.right.document.Statement[0]!.Resource[0]!
          assert.isTrue(resource.startsWith(prefix))
          const [walletSegment, sessionSegment, star, ...rest] = resource.slice(prefix.length).split("/")
          assert.strictEqual(walletSegment, wallet)
          assert.strictEqual(sessionSegment, session)
          assert.strictEqual(star, "*")
          assert.deepStrictEqual(rest, [])
          assert.match(wallet, Catalog.ID_PATTERN)
          for (const bad of ["*", "?", "$", "..", "#"]) assert.notInclude(`${wallet}${session}`, bad)
        }
      )
    )
  })

  it("the worst-case ids used at load time are themselves valid", () => {
    const w = SessionPolicy.worstCaseVariables
    assert.match(w.wallet, Catalog.ID_PATTERN)
    assert.match(w.agent, Catalog.ID_PATTERN)
    assert.match(w.session, SessionPolicy.SESSION_PATTERN)
    for (const b of [w.vault_bucket, w.memory_bucket, w.audit_bucket])
      assert.match(b, SessionPolicy.BUCKET_PATTERN)
  })
})
